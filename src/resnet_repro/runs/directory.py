"""The run-directory protocol, in one context manager: refuse links, claim the directory for this recipe and seed,
check a user's checkpoint, hold the directory (lock.py), claim it again now that it is held, clear the temporary
files of interrupted writes, and say whether the run is completed (skip it) or where it resumes from."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_repro.files import CheckpointError, interrupted_writes
from resnet_repro.runs import records
from resnet_repro.runs.layout import CHECKPOINTS, GRADIENT_NORMS, LAST, LAYER_RESPONSES, RECIPE, RESULTS, refuse_links
from resnet_repro.runs.lock import hold
from resnet_repro.runs.recipe import claim_run_dir, resume_checkpoint

log = logging.getLogger(__name__)

# the run's own files, by folder (eval.json and export/ are not the run's): a kill mid-write leaves a temporary
RUN_FILES = {".": (RECIPE, RESULTS, LAYER_RESPONSES, GRADIENT_NORMS), CHECKPOINTS: ("*.ckpt",)}


@dataclass(frozen=True)
class Claimed:
    """A held run directory: its recorded results when the run is completed (skip it), else the checkpoint it
    resumes from (None: from the start)."""

    completed: dict[str, Any] | None
    resume_from: Path | None


@contextlib.contextmanager
def run_directory(
    out_dir: Path, identity: dict[str, Any], record: dict[str, Any], ckpt_path: str | None, is_holder: bool = True
) -> Iterator[Claimed]:
    """Hold `out_dir` for the run of `identity` ({recipe_id, seed, recipe}) while the body trains it.

    Everything that can be refused (a link, another recipe, a user's checkpoint of another recipe or with counters
    it did not train) is refused before anything is written; `record` (the overrides) is written with the recipe
    in recipe.json. Under DDP only the holder (global rank 0) takes the lock and writes."""
    refuse_links(out_dir)  # nothing is written through a symbolic link
    claim_run_dir(out_dir, identity, record, write=False)
    records.read(out_dir / RESULTS, records.results)  # a results.json of the wrong types: refused now, not later
    if ckpt_path not in (None, "last"):
        resume_checkpoint(out_dir, ckpt_path, identity)  # the user's file: checked before anything is written
    elif (out_dir / CHECKPOINTS / LAST).is_file():
        with contextlib.suppress(CheckpointError):  # a damaged one is moved aside once held (resume_checkpoint)
            records.checkpoint(out_dir / CHECKPOINTS / LAST)  # counters it did not train: refused now
    with hold(out_dir, is_holder):  # RunHeldError when another process trains it
        # again, now that the directory is held: the previous holder may have recorded the recipe or completed it
        claim_run_dir(out_dir, identity, record, write=is_holder)
        for folder, names in RUN_FILES.items():
            for line in interrupted_writes(out_dir / folder, names, remove=is_holder):
                log.warning(line)
        previous = records.read(out_dir / RESULTS, records.results)
        untrained = records.not_trained(previous or {}, identity["recipe"], segments=False)  # its step, recounted
        if untrained:  # completed means trained: a status alone is not believed
            log.warning(
                "%s was recorded completed, but %s: training it (from its checkpoint, if any)", out_dir, untrained
            )
        if previous and previous.get("status") == "completed" and not untrained:
            log.info("%s is completed; skipping it (delete its results.json to train it again)", out_dir)
            yield Claimed(previous, None)
        else:
            yield Claimed(None, resume_checkpoint(out_dir, ckpt_path, identity))
