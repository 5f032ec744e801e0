"""Installable anywhere: a copy of the project installed with `pip install .` (not editable) into a new venv trains
a run and writes its report from outside the repository, with the configs and paper numbers that travel with it."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import REPO, TINY

pytestmark = pytest.mark.slow


def test_pip_install_then_train_and_report_from_elsewhere(tiny_cifar: Path, tmp_path: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    copy = tmp_path / "checkout"
    for name in filter(None, files):
        source = REPO / name
        if source.is_symlink() or source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            (copy / name).symlink_to(source.readlink()) if source.is_symlink() else (copy / name).write_bytes(
                source.read_bytes()
            )

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # the heavy dependencies (torch, Lightning, Hydra) from this environment; its .pth files are not read from there,
    # so the project itself comes from the new install alone
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", str(copy)],  # a wheel built in isolation, as `pip install .`
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [python, "-c", "import resnet_repro; print(resnet_repro.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr

    args = [*TINY, "model.depth=8", f"data.root={tiny_cifar}", "output_root=out", "name=sweep"]
    train = subprocess.run([python, "-m", "resnet_repro.train", *args], cwd=elsewhere, capture_output=True, text=True)
    assert train.returncode == 0, train.stderr[-3000:]
    report = subprocess.run(
        [python, "-m", "resnet_repro.report", "out/sweep"], cwd=elsewhere, capture_output=True, text=True
    )
    assert report.returncode == 0, report.stderr[-3000:]
    text = (elsewhere / "out" / "sweep" / "report" / "report.md").read_text()
    # the report composes the paper's recipe from conf/ and reads experiments/paper_numbers.yaml: both travelled
    assert "| ResNet-8 |" in text and "the paper has no number for this network" in text
