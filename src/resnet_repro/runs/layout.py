"""The names in a run directory, in one place: every module that reads or writes a run takes them from here."""

from __future__ import annotations

import os
from pathlib import Path

from resnet_repro.errors import UserError

LOCK = ".lock"  # held while a process trains the run (runs/lock.py); never delete it under a running run
RUN_LOG = "train.log"  # the run's log, written by its holder alone
RECIPE = "recipe.json"  # the run's identity, written before training starts (runs/recipe.py)
RESULTS = "results.json"  # what the run recorded: status, metrics, provenance (training/record.py)
LAYER_RESPONSES = "layer_responses.json"  # Fig. 7: the std of each 3x3 layer's response on the test set
GRADIENT_NORMS = "gradient_norms.json"  # Sec. 4.1: the gradient norm of each 3x3 layer during training
EVAL = "eval.json"  # `python -m resnet_repro.evaluate RUN`: not the run's own, written beside it
CHECKPOINTS = "checkpoints"  # LAST and best-step=N.ckpt
LAST = "last.ckpt"  # what a rerun resumes from
TENSORBOARD = "tb"  # conf/logger/: the run's TensorBoard events
EXPORT = "export"  # `python -m resnet_repro.export RUN`: plain weights

ENTRIES = (LOCK, RUN_LOG, RECIPE, RESULTS, LAYER_RESPONSES, GRADIENT_NORMS, EVAL, CHECKPOINTS, TENSORBOARD, EXPORT)


def refuse_links(run_dir: Path) -> None:
    """Refuse a run directory that is a symbolic link, or in which one of the entries this project writes is one, or
    holds one at any depth (tb/version_0/hparams.yaml): writing through it would change a file elsewhere. Raises
    UserError naming the link; nothing is written."""
    links = [run_dir] if run_dir.is_symlink() else []  # the run directory itself: every file would go elsewhere
    links += [run_dir / name for name in ENTRIES if (run_dir / name).is_symlink()]
    for folder in (CHECKPOINTS, TENSORBOARD, EXPORT):  # and at any depth below the folders it writes into
        for parent, dirs, files in os.walk(run_dir / folder) if not (run_dir / folder).is_symlink() else ():
            links += [Path(parent, name) for name in dirs + files if Path(parent, name).is_symlink()]
    if links:
        raise UserError(
            f"{links[0]} is a symbolic link (to {os.readlink(links[0])}); a run directory holds only its own files, "
            "so nothing was written: remove the link, or train in another output_root"
        )
