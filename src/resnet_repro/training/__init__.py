"""Training a run: the LightningModule, its schedule, callbacks, checks, the analyses logged during training,
the sweep's progress and what results.json records."""
