"""Where the Hydra configs are, Hydra's version base, and the recipe keys that name a network (conf/net/)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

VERSION_BASE = "1.3"  # Hydra's version_base, in this one place
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")  # a link to the repository's conf/; a copy when installed


@cache
def net_keys() -> tuple[str, ...]:
    """The recipe keys that name a network: the model's class and every key a named net (conf/net/*.yaml) sets,
    its warm-up included (Sec. 4.2: ResNet-110's warm-up is part of its recipe), with the options of those keys'
    features (recipe.INERT_WHEN_OFF). Grouping, labels, figures and claims take "the net" from here."""
    from resnet_repro.recipe import INERT_WHEN_OFF, flatten

    keys = {"model._target_"}
    for path in sorted(Path(CONFIG_DIR, "net").glob("*.yaml")):
        tree = {k: v for k, v in (yaml.safe_load(path.read_text()) or {}).items() if k != "defaults"}
        keys.update(flatten(tree))
    keys.update(option for switch in list(keys) for option in INERT_WHEN_OFF.get(switch, ()))
    return tuple(sorted(keys))
