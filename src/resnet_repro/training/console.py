"""A quiet console at the entry points: third-party tips and deprecation notices that say nothing about the run
are filtered, so what is printed is the run's own progress, results and errors."""

from __future__ import annotations

import logging
import warnings

# (logger, the start of a message it prints that concerns no user of this project): Lightning's tips, its device
# lines (results.json records the machine) and its restore lines (the run says "resuming from step N" itself), which
# would stand before a refusal
TIPS = tuple(
    ("pytorch_lightning.utilities.rank_zero", start)
    for start in (
        "💡 Tip:",
        "GPU available:",
        "TPU available:",
        "HPU available:",
        "Restoring states from the checkpoint",
        "Restored all states from the checkpoint",
    )
)
# deprecation notices raised inside dependencies, about their own internals (message patterns)
INTERNAL_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",
    # Lightning on every resume (the run's checkpoints/ holds its own files), and on a run folder that was moved
    # (its best-by-val bookkeeping is the checkpoint's; the run says "resuming from step N" itself)
    r"Checkpoint directory .* exists and is not empty",
    r"The dirpath has changed from",
    # Lightning where a GPU is present but the command runs on the CPU (evaluate's default, --accelerator): the
    # device is the user's choice and results.json / eval.json record the machine
    r"GPU available but not used",
)


class DropTips(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefix)


def quiet_console() -> None:
    """Filter the third-party noise (idempotent: a filter is added once per logger)."""
    for name, prefix in TIPS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropTips) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(DropTips(prefix))
    for message in INTERNAL_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
