"""Policies: loading any model (local, hub, PEFT LoRA) and the embedded demo model's build."""
