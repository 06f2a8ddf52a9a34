"""RLCE: reinforcement learning from code execution. Driver-side types, config and loop."""
