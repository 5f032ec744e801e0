"""The one reader of TensorBoard event files: a run's scalars against the iteration, for reports, benchmarks, tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from resnet_repro.runs.layout import TENSORBOARD


def read_scalars(run_dir: Path, tags: Iterable[str] | None = None) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} sorted by step, from every event file under `run_dir`/tb.

    A resumed run has several event files; a later file's value wins at a step logged twice. Only regular files
    are read (no link, no FIFO), as the reading gate reads every other record of a run.
    """
    wanted = set(tags) if tags is not None else None
    points: dict[str, dict[int, float]] = {}
    folder = Path(run_dir, TENSORBOARD)
    for events in sorted(folder.glob("events.out.tfevents.*")) if not folder.is_symlink() else []:
        if events.is_symlink() or not events.is_file():  # a link may point anywhere; a FIFO would block the reader
            continue
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            if wanted is None or tag in wanted:
                points.setdefault(tag, {}).update({e.step: e.value for e in accumulator.Scalars(tag)})
    return {tag: sorted(values.items()) for tag, values in points.items()}
