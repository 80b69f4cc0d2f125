"""Losses, seeding, the training loop and the shared inference path."""
