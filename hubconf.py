"""torch.hub entry points of resnet-repro: the paper's networks, fresh or with trained weights.

    torch.hub.load("/path/to/resnet-repro", "cifar_resnet", source="local", depth=56, residual=True, shortcut="A")
    torch.hub.load("/path/to/resnet-repro", "imagenet_resnet", source="local", depth=50)
    torch.hub.load("/path/to/resnet-repro", "cifar_resnet", source="local", weights="outputs/fig6/net=resnet56/seed=0")

`weights`: a run directory (or a checkpoint in one), a file from `python -m resnet_repro.export`, or (ImageNet) a
torchvision ResNet state_dict; the network is then rebuilt from what the weights record, and the other arguments
must agree with it.
"""

from __future__ import annotations

import sys
from pathlib import Path

dependencies = ["torch"]

try:
    import resnet_repro  # noqa: F401  (installed)
except ImportError:  # a checkout that was not installed: its src/ holds the package
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from resnet_repro.use.hub import cifar_resnet, imagenet_resnet  # noqa: E402

__all__ = ["cifar_resnet", "imagenet_resnet"]
