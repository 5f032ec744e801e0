"""TensorBoard for comparing runs: a real server on the loopback interface over a tiny sweep and its report,
queried over HTTP as the browser does: scalars, the HParams columns, the report's images and the Fig. 6 layout."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from resnet_repro.report import write_report
from tests.helpers import TINY, run_cli

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, body: dict | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_tensorboard_serves_runs_hparams_figures_and_fig6_layout(tiny_cifar: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", *TINY, "model.depth=8", f"data.root={tiny_cifar}", f"output_root={tmp_path}", "name=sweep"]
    result = run_cli([*args, "model.residual=true,false"])
    assert result.returncode == 0, result.stderr[-3000:]
    write_report([sweep], sweep / "report")

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(sweep),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--reload_interval",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                tags = get(f"{base}/data/plugin/scalars/tags")
                images = get(f"{base}/data/plugin/images/tags")
                if len(tags) >= 3 and images:
                    break
            except OSError:
                pass
            assert time.time() < deadline and server.poll() is None, "tensorboard did not serve the sweep"
            time.sleep(1)
        runs = [run for run in tags if run.endswith("/tb") and "seed=" in run]
        assert len(runs) == 2  # the two runs of the sweep
        for run in runs:
            assert {"train/err", "test/err", "lr"} <= set(tags[run])

        experiment = get(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
        columns = {info["name"] for info in experiment["hparamInfos"]}
        assert {
            "model.depth",
            "model.residual",
            "model.shortcut",
            "trainer.precision",
            "data.batch_size",
            "optim.lr",
            "optim.weight_decay",
            "optim.milestones",
            "trainer.max_steps",
            "seed",
            "data.name",
        } <= columns
        assert "optim.warmup_lr" not in columns  # no run of the sweep has a warm-up: absent, not 0.0
        types = {info["name"]: info["type"] for info in experiment["hparamInfos"]}
        assert types["model.residual"] == "DATA_TYPE_BOOL" and types["model.depth"] == "DATA_TYPE_FLOAT64"
        assert not any("_target_" in c or c.startswith(("callbacks", "data.root", "hydra")) for c in columns)
        assert len(columns) <= 16
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert {"hparams/test_err", "hparams/train_err"} <= metrics and "hparams/test_err5" not in metrics

        board = next(run for run in images if run.endswith("report/tb"))
        assert {"report/fig6-cifar10", "report/fig7-cifar10"} <= set(images[board])
        layout = get(f"{base}/data/plugin/custom_scalars/layout")
        (category,) = layout["category"]
        assert [chart["title"] for chart in category["chart"]] == ["plain", "residual"]
        assert any(tag.startswith("fig6-cifar10/plain/plain-8-") for tag in tags[board])
        assert any(tag.startswith("fig6-cifar10/residual/ResNet-8-") for tag in tags[board])
    finally:
        server.terminate()
        server.wait(timeout=30)
