"""The paths the documentation prints exist after the commands they follow: each is composed from the real configs
as Hydra names the run (or sweep) directory, and every concrete `outputs/...` path in README.md, docs/, hubconf.py
and the package's docstrings is one of them (or a file inside one)."""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from resnet_repro.config import compose_config
from tests.helpers import REPO

# a path the documentation prints -> the command line (overrides) that makes it, and what below it is named
PATHS = {
    "outputs/cifar10/net=resnet56/seed=0": (["experiment=fig6", "net=resnet56", "seed=0"], "sweep"),
    "outputs/cifar10-quick": (["experiment=quick"], "sweep-dir"),
    "outputs/cifar10": (["experiment=fig6"], "sweep-dir"),
    "outputs/single/seed=0": ([], "run"),
}
BELOW = ("/checkpoints/last.ckpt", "/report/report.md")  # what a run directory and a sweep directory hold


def made_by(overrides: list[str], kind: str) -> str:
    cfg = compose_config(overrides, return_hydra_config=True)
    hydra = cfg.hydra
    OmegaConf.resolve(cfg)
    if kind == "run":
        return hydra.run.dir
    return hydra.sweep.dir if kind == "sweep-dir" else f"{hydra.sweep.dir}/{hydra.sweep.subdir}"


@pytest.mark.parametrize("path", sorted(PATHS))
def test_each_printed_path_is_what_its_command_makes(path: str) -> None:
    overrides, kind = PATHS[path]
    assert made_by(overrides, kind) == path


def test_every_outputs_path_in_the_docs_is_one_that_a_command_makes() -> None:
    files = [REPO / "README.md", REPO / "hubconf.py", *(REPO / "docs").glob("*.md")]
    files += [p for p in (REPO / "src" / "resnet_repro").rglob("*.py")]
    found = {m for f in files for m in re.findall(r"outputs/[A-Za-z0-9_=.,/-]*[A-Za-z0-9_=]", f.read_text())}
    assert "outputs/cifar10/net=resnet56/seed=0" in found
    for path in (p for p in found if "..." not in p):  # outputs/.../seed=0 is a placeholder
        assert any(path == known or path.removeprefix(known) in BELOW for known in PATHS), path
