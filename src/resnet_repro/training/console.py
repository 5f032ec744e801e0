"""A quiet console at the entry points: third-party tips and deprecation notices that say nothing about the run
are filtered, so what is printed is the run's own progress, results and errors."""

from __future__ import annotations

import logging
import warnings

# (logger, the start of a message it prints that concerns no user of this project): Lightning's tips, and its
# device lines, printed before anything is checked (a refusal would follow them; results.json records the machine)
TIPS = tuple(
    ("pytorch_lightning.utilities.rank_zero", start)
    for start in ("💡 Tip:", "GPU available:", "TPU available:", "HPU available:")
)
# deprecation notices raised inside dependencies, about their own internals (message patterns)
INTERNAL_WARNINGS = (r".*isinstance\(treespec, LeafSpec\).*",)


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
