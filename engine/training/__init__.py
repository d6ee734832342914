"""One training run: the VERL trainer (TRL's GRPOTrainer + capture and shaping), its recording callback, held-out evaluation and the entry point."""
