"""pass@k evaluation: the estimator with its sampling and scoring helpers, and eval jobs."""
