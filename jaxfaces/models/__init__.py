"""Flax Linen modules only: no I/O, no losses, no optimisers."""
