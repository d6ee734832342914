"""Run recipes shipped with the package."""
