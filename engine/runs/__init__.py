"""Runs as a whole: the run service (submit, duplicate, cancel, resume, delete, export), the worker that executes queued runs, and a run's lifecycle inside its process."""
