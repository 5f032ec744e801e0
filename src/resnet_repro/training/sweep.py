"""A sweep's progress and outcome: one line per run started, skipped or finished (k of n), one summary line at
the end, and a non-zero exit when a run failed or diverged (after every run was recorded). A run held by another
process (lock.py: a second sweep of the same runs) is skipped and named in the summary; that is not a failure.

`SweepProgress` is a Hydra callback (conf/train.yaml, hydra.callbacks). At the start of a multirun it opens a
ledger folder in the sweep directory and names it in an environment variable, which the jobs inherit whatever
the launcher (in this process, joblib workers, submitit jobs); each job writes its outcome there (`record_job`),
and the end of the multirun reads them back.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from resnet_repro.files import open_folder, read_json, write_json
from resnet_repro.runs.lock import holder_text

log = logging.getLogger(__name__)

LEDGER_ENV = "RESNET_REPRO_SWEEP_LEDGER"
_created: list[Path] = []  # the ledger this process made (on_multirun_start): the only one it may remove


class SweepFailed(BaseException):  # noqa: N818 -- a BaseException: Hydra's launchers re-raise it untouched
    """Some runs of the sweep failed or diverged; the message is the sweep's summary line."""


class RunInterrupted(BaseException):  # noqa: N818 -- past Hydra's launchers, like SweepFailed
    """A run stopped by Ctrl-C or SIGTERM after saving its checkpoint: the sweep stops too, with its summary."""


class StopSweep(BaseException):  # noqa: N818
    """Bad input that every job would hit: the sweep stops at the first job with this error's message."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def count_jobs(config: DictConfig) -> int:
    """The number of runs of the multirun: the product of the sweep overrides' lengths (config and command line)."""
    parser = OverridesParser.create()
    params = config.hydra.sweeper.get("params")
    params = OmegaConf.to_container(params) if params else {}
    overrides = {o.key_or_group: o for o in parser.parse_overrides([f"{k}={v}" for k, v in params.items()])}
    overrides.update({o.key_or_group: o for o in parser.parse_overrides(list(config.hydra.overrides.task))})
    return math.prod(len(list(o.sweep_string_iterator())) for o in overrides.values() if o.is_sweep_override())


class SweepProgress(Callback):
    """Counts the runs of a multirun and ends it with a summary line (and SweepFailed when one failed)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        ledger = sweep_dir / ".sweeps" / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        total = count_jobs(config)
        write_json(ledger / "sweep.json", {"total": total, "sweep_dir": str(sweep_dir)}, root=sweep_dir)
        os.environ[LEDGER_ENV] = str(ledger)
        _created.append(ledger)
        log.info("sweep of %d runs into %s", total, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        ledger = Path(os.environ[LEDGER_ENV])
        lines, line, failed = summarize(ledger)
        close_ledger()
        print("\n".join(lines), flush=True)
        if failed:
            raise SweepFailed(line)
        print(line, flush=True)


def summarize(ledger: Path) -> tuple[list[str], str, bool]:
    """A sweep's outcome from its ledger: a line per run (how each ended), the summary line (counts, and where its
    report is or how to write it), and whether a run did not complete (a run held by another process did)."""
    sweep = read_json(ledger / "sweep.json") or {}
    outcomes = [read_json(p) or {"status": "unknown"} for p in sorted(ledger.glob("job-*.json"))]
    counts = Counter(o["status"] for o in outcomes)
    counts["not run"] = sweep.get("total", len(outcomes)) - len(outcomes)
    holders = sorted(
        {f"host {o['holder'].get('host')}, pid {o['holder'].get('pid')}" for o in outcomes if o.get("holder")}
    )
    parts = [f"{n} {status}" for status, n in counts.items() if n and status != "held"]
    if counts["held"]:  # trained by another process (a second sweep of the same runs): not a failure
        parts.append(f"{counts['held']} held by another process ({'; '.join(holders)})")
    sweep_dir = Path(str(sweep.get("sweep_dir", ledger.parent.parent)))
    lines = []
    for outcome in outcomes:  # a table of the runs, one line each: how each ended
        where = Path(str(outcome.get("run_dir", "?")))
        shown = where.relative_to(sweep_dir) if where.is_relative_to(sweep_dir) else where
        lines.append(f"  {shown}: {outcome.get('ended', outcome['status'])}")
    report = sweep_dir / "report" / "report.md"
    then = f"see {report}" if report.is_file() else f"its report: python -m resnet_repro.report {sweep_dir}"
    failed = any(status not in ("completed", "held") for status, n in counts.items() if n)
    return lines, f"{', '.join(parts)}: {then}", failed


def ledger_now() -> Path | None:
    """The ledger of the sweep this process runs, if it runs one."""
    found = os.environ.get(LEDGER_ENV)
    return Path(found) if found and (Path(found) / "sweep.json").is_file() else None


def close_ledger() -> None:
    """Remove the sweep ledger this process created (at the end of a multirun, or when it stops early). A ledger
    named by an inherited environment variable belongs to another process and is left alone."""
    os.environ.pop(LEDGER_ENV, None)
    while _created:
        ledger = _created.pop()
        with contextlib.suppress(OSError):  # through descriptors, never following a link (shutil.rmtree's dir_fd)
            ledgers = open_folder(ledger.parent, ledger.parent.parent, create=False)
            try:
                shutil.rmtree(ledger.name, dir_fd=ledgers)
            finally:
                os.close(ledgers)
            os.rmdir(ledger.parent)  # .sweeps/, when no other sweep is running


def announce(
    job: int,
    event: str,
    run_dir: Path,
    status: str | None = None,
    ended: str | None = None,
    holder: dict[str, Any] | None = None,
) -> None:
    """Log "run k of n <event>: <dir> (<how it ended>)" and, with a status, record the outcome (and a holder) in the
    sweep's ledger. Only jobs of a multirun call it (a single run that inherited the variable writes in no one's
    ledger)."""
    ledger = os.environ.get(LEDGER_ENV)
    if ledger is None or not (Path(ledger) / "sweep.json").is_file():  # no sweep, or its ledger is gone
        return
    total = (read_json(Path(ledger) / "sweep.json") or {}).get("total", "?")
    shown = f"held by another process, {holder_text(holder)}" if holder else (ended or status)
    log.info("run %d of %s %s: %s%s", job + 1, total, event, run_dir, f" ({shown})" if shown else "")
    if status is not None:
        outcome = {"run_dir": str(run_dir), "status": status, "ended": ended or status, "holder": holder}
        write_json(Path(ledger) / f"job-{job:06d}.json", outcome, root=Path(ledger).parent.parent)  # the sweep's
