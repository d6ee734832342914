"""Training data (the built-in arithmetic task, dataset files, hub datasets) and verifiable rewards."""
