"""The layout's layers hold (pyproject.toml [tool.importlinter], checked by `make lint`), and the check fails when a
lower layer imports a higher one: shown on a copy of the package with one deliberate violation."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")  # what `make lint` runs


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the package under `root`/src, with the contracts of `root`/pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root / "src")}  # this copy of resnet_repro, not the installed one
    return subprocess.run(
        [str(LINT_IMPORTS), str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )


def test_the_package_keeps_its_layers() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "added", "named"),
    [
        # runs/ sits below training/: a run directory must not need the training code
        ("runs/lock.py", "from resnet_repro.training import module", ["resnet_repro.runs.lock", "training.module"]),
        # the report reads run directories, never the networks
        ("report/stats.py", "import resnet_repro.models", ["resnet_repro.report.stats", "resnet_repro.models"]),
        # "report | use": one layer of two parts that do not import each other
        ("report/stats.py", "import resnet_repro.use.weights", ["resnet_repro.report is not allowed to import"]),
        # exhaustive: a new module is placed in a layer, or the lint fails
        ("helpers.py", "", ["not listed as layers", "resnet_repro.helpers"]),
    ],
    ids=["lower imports higher", "report imports a network", "report imports use", "module in no layer"],
)
def test_an_import_against_the_layers_fails_the_lint(tmp_path: Path, module: str, added: str, named: list[str]) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO / "src" / "resnet_repro", tmp_path / "src" / "resnet_repro", symlinks=True)
    path = tmp_path / "src" / "resnet_repro" / module
    before = path.read_text() if path.exists() else '"""A module of no layer."""\n'
    path.write_text(before + (f"\n{added}  # noqa: E402\n" if added else ""))
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    for text in named:
        assert text in result.stdout, result.stdout


def test_every_module_says_its_job_in_its_first_line() -> None:
    for path in sorted((REPO / "src" / "resnet_repro").rglob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring and docstring.strip(), f"{path.relative_to(REPO)} has no module docstring"


def test_the_readme_layout_names_every_module() -> None:
    """Every module and package of src/resnet_repro appears in the README's layout section, and nothing else does."""
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout") :].split("\n## ", 1)[0]
    listed = {line.split()[0] for line in layout.splitlines() if line.startswith("      ") and line.split()}
    package = REPO / "src" / "resnet_repro"
    present = {p.name for p in package.glob("*.py") if p.name != "__init__.py"}
    present |= {f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").exists()}
    for folder in ("report", "use", "training", "runs"):
        present |= {p.name for p in (package / folder).glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert listed == present
