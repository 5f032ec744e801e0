"""Using a trained run: load its weights, export them, evaluate them, and torch.hub."""
