"""The loop every method shares: mesh and sharding, checkpoints, logs, progress, evaluation."""
