"""torch.hub entry points of resnet-repro: the paper's networks, fresh or with trained weights.

    torch.hub.load("/path/to/resnet-repro", "cifar_resnet", source="local", depth=56, residual=True, shortcut="A")
    torch.hub.load("/path/to/resnet-repro", "imagenet_resnet", source="local", depth=50)
    torch.hub.load("/path/to/resnet-repro", "cifar_resnet", source="local",
                   weights="outputs/cifar10/net=resnet56/seed=0")

`weights`: a run directory (or a checkpoint in one), a file from `python -m resnet_repro.export`, (ImageNet) a
torchvision ResNet state_dict, or with `convention="akamaster"` (CIFAR) a published checkpoint of another project;
the network is then rebuilt from what the weights record, and the other arguments must agree with it. The code that
runs is this checkout's (src/), whatever copy of resnet_repro is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

dependencies = ["torch"]

SRC = Path(__file__).resolve().parent / "src"  # this checkout's code: torch.hub runs it, never another copy's
sys.path.insert(0, str(SRC))
import resnet_repro  # noqa: E402

if not Path(resnet_repro.__file__).resolve().is_relative_to(SRC):
    raise ImportError(
        f"resnet_repro is already imported from {Path(resnet_repro.__file__).parent}, not from this checkout ({SRC}): "
        "load the hub entry points in a fresh process, or use that copy's own hubconf.py"
    )

from resnet_repro.use.hub import cifar_resnet, imagenet_resnet  # noqa: E402

__all__ = ["cifar_resnet", "imagenet_resnet"]
