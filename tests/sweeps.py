"""Sweeps built from run directories as training writes them, with known numbers, for the report's tests."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from resnet_repro import config
from resnet_repro.config import compose_config
from resnet_repro.report import write_report
from resnet_repro.runs.recipe import fingerprint

OFFICIAL = {"source": "official", "fingerprint": "0123456789abcdef"}
FOLDER = {"source": "image-folder", "fingerprint": "fedcba9876543210"}


def add_run(
    sweep: Path,
    overrides: list[str],
    seed: int,
    test: float,
    train: float = 1.0,
    data: dict | None = None,
    responses: list[float] | None = None,
    gradients: list[float] | None = None,
    status: str = "completed",
    **metrics: float,
) -> Path:
    """A run directory as training writes it, with the recipe the real configs compose for `overrides`."""
    cfg = compose_config(overrides)
    data = data or OFFICIAL
    recipe = config.recipe(cfg, data)
    run_dir = sweep / fingerprint(recipe) / f"seed={seed}"
    run_dir.mkdir(parents=True)
    identity = {"recipe_id": fingerprint(recipe), "seed": seed, "recipe": recipe}
    (run_dir / "recipe.json").write_text(json.dumps(identity))
    results = {
        "status": status,
        "step": cfg.trainer.max_steps,
        "metrics": {"test_err": test, "train_err": train, "train_window": 391.0, **metrics}
        if status == "completed"
        else {},
        **identity,
        "data": {**data, "kind": "official-batches" if data["source"] == "official" else "image-folder"},
        "precision": cfg.trainer.precision,
        "params": 1,
        "git_commit": "0" * 40,
        "machine": {"cpu": "test"},
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if status != "completed":
        results["error"] = "RuntimeError: boom"
    (run_dir / "results.json").write_text(json.dumps(results))
    if responses is not None:
        (run_dir / "layer_responses.json").write_text(json.dumps({f"l{i}": r for i, r in enumerate(responses)}))
    if gradients is not None:
        (run_dir / "gradient_norms.json").write_text(json.dumps({f"l{i}": g for i, g in enumerate(gradients)}))
    return run_dir


def scorecard(sweep: Path) -> dict[int, list[dict]]:
    write_report([sweep], sweep / "report")
    claims = json.loads((sweep / "report" / "scorecard.json").read_text())["claims"]
    out: dict[int, list[dict]] = {}
    for claim in claims:
        out.setdefault(claim["id"], []).append(claim)
    return out


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every markdown table in `text`, each as rows keyed by the table's column names."""
    found, header = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            found.append([])
        elif not set("".join(cells)) <= set("-: "):
            found[-1].append(dict(zip(header, cells, strict=True)))
    return found


def row(text: str, label: str) -> list[dict[str, str]]:
    """The rows of the report's tables whose `net` column is `label`, keyed by column name."""
    return [r for table in tables(text) for r in table if r.get("net") == label]


def sweep_from_runs(runs_json: Path, sweep: Path) -> Path:
    """The run directories that a report's runs.json describes, written back under `sweep`."""
    for entry in json.loads(runs_json.read_text()):
        run_dir = sweep / entry["run"]
        run_dir.mkdir(parents=True)
        identity = {"recipe_id": entry.get("recipe_id"), "seed": entry.get("seed"), "recipe": entry.get("recipe")}
        (run_dir / "recipe.json").write_text(json.dumps(identity))
        files = {"gradient_norms": "gradient_norms.json", "layer_responses": "layer_responses.json"}
        results = {k: v for k, v in entry.items() if k != "run" and k not in files}
        (run_dir / "results.json").write_text(json.dumps(results))
        for key, name in files.items():
            if entry.get(key) is not None:
                (run_dir / name).write_text(json.dumps(entry[key]))
    return sweep
