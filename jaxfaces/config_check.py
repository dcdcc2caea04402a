"""Validates a whole config before anything is built or compiled.

`check(config)` checks the sections every training method shares (`train`, `optim`,
`data`), then hands the config to the method's own `check_config`. Each rule raises a
`ValueError` (a missing folder: `FileNotFoundError`) whose one-line message names the key,
its value and what is allowed, e.g.

    config.train.log_every (0) must be >= 1

The entry points print it as `error: MESSAGE` and exit with status 2.
"""

import math
import pathlib
from typing import Any

import ml_collections

from jaxfaces import optim

_MISSING = object()


def _value(config: ml_collections.ConfigDict, key: str, required: bool) -> Any:
    """`config`'s value at the dotted `key`; _MISSING when absent and not required."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            if required:
                raise ValueError(f"config.{key} is missing")
            return _MISSING
        node = node[part]
    return node


def _number(key: str, value: Any, integer: bool) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (not integer and math.isnan(value)):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"config.{key} ({value!r}) must be {kind}")


def at_least(
    config: ml_collections.ConfigDict,
    key: str,
    low: float,
    *,
    integer: bool = True,
    required: bool = True,
) -> None:
    """Raises ValueError unless `config.<key>` is a number >= `low` (skipped if absent and
    not `required`)."""
    value = _value(config, key, required)
    if value is _MISSING:
        return
    _number(key, value, integer)
    if not value >= low:
        raise ValueError(f"config.{key} ({value!r}) must be >= {low}")


def above(config: ml_collections.ConfigDict, key: str, low: float) -> None:
    """Raises ValueError unless `config.<key>` is a number > `low`."""
    value = _value(config, key, required=True)
    _number(key, value, integer=False)
    if not value > low:
        raise ValueError(f"config.{key} ({value!r}) must be > {low}")


def in_range(
    config: ml_collections.ConfigDict,
    key: str,
    low: float,
    high: float,
    *,
    high_open: bool = True,
    low_open: bool = False,
    required: bool = True,
) -> None:
    """Raises ValueError unless `config.<key>` is a number in the interval from `low` to
    `high` (open at either end as asked; skipped if absent and not `required`)."""
    value = _value(config, key, required)
    if value is _MISSING:
        return
    _number(key, value, integer=False)
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"config.{key} ({value!r}) must be in {interval}")


def one_of(
    config: ml_collections.ConfigDict, key: str, choices: tuple[str, ...], required: bool = True
) -> None:
    """Raises ValueError unless `config.<key>` is one of `choices`."""
    value = _value(config, key, required)
    if value is not _MISSING and value not in choices:
        raise ValueError(f"config.{key} ({value!r}) must be one of: {', '.join(choices)}")


def check_train(config: ml_collections.ConfigDict) -> None:
    """The `train` section: step counts, the decay, intervals, checkpoints, precision."""
    from jaxfaces.models import layers  # Flax; imported only when a config is checked.

    at_least(config, "train.num_steps", 1)
    optim.decay_steps(config)  # decay_steps in [0, num_steps], or decay_fraction in [0, 1].
    for key in ("log_every", "log_images_every", "ckpt_every"):  # Used as `step % every`.
        at_least(config, f"train.{key}", 1)
    at_least(config, "train.eval_every", 0, required=False)  # 0: off.
    at_least(config, "train.profile", 0, required=False)  # 0: off.
    at_least(config, "train.keep_checkpoints", 1)
    one_of(config, "train.dtype", tuple(layers.DTYPES), required=False)
    in_range(config, "train.ema_decay", 0, 1, required=False)


def check_optim(config: ml_collections.ConfigDict) -> None:
    """The `optim` section: Adam's learning rate and betas."""
    above(config, "optim.lr", 0)
    in_range(config, "optim.b1", 0, 1)
    in_range(config, "optim.b2", 0, 1)


def check_data(config: ml_collections.ConfigDict) -> None:
    """The `data` section: sizes, batch, cache, built-in data and the one training source."""
    at_least(config, "data.size", 1)
    at_least(config, "data.load_size", 1)
    if config.data.load_size < config.data.size:
        raise ValueError(
            f"config.data.size ({config.data.size}) must be <= config.data.load_size "
            f"({config.data.load_size}) (images are loaded at load_size, then cropped)"
        )
    at_least(config, "data.batch_size", 1)
    at_least(config, "data.cache_mb", 0, integer=False, required=False)
    data = config.data
    synthetic = data.get("synthetic", {}).get("enabled", False)
    if synthetic:
        at_least(config, "data.synthetic.size", 16)
        at_least(config, "data.synthetic.num_train", 1)
        at_least(config, "data.synthetic.num_test", 1)
        if not data.get("root"):
            raise ValueError(
                "config.data.synthetic.enabled needs config.data.root (where to write)"
            )
    check_source(data, synthetic)


def check_source(data: ml_collections.ConfigDict, synthetic: bool = False) -> None:
    """Exactly one training source (`data.sources.source`); the folders the config names
    exist (`root` may be missing when the built-in data is to be written there); aligned
    data (`data.aligned`) comes from `root`, which holds train/, and is not the built-in data."""
    from jaxfaces.data import sources

    sources.source(data)
    keys = ["a", "b", "test_a", "test_b", "truth_a2b", "truth_b2a"]
    for key in keys if synthetic else ["root", *keys]:
        value = data.get(key)
        if value and not pathlib.Path(value).expanduser().is_dir():
            raise FileNotFoundError(f"config.data.{key}: no folder at {value}")
    if sources.aligned(data):  # ValueError unless the source is data.root.
        if synthetic:
            raise ValueError(
                "config.data.aligned=True needs config.data.synthetic.enabled=False: the "
                "built-in data is written as trainA/ trainB/, not as A|B images"
            )
        train = sources.aligned_folder(data, "train").expanduser()
        if not train.is_dir():
            raise FileNotFoundError(
                f"config.data.aligned=True: no folder {train} (config.data.root/train/ holds "
                "the training images, A|B side by side)"
            )


def check_method(config: ml_collections.ConfigDict) -> None:
    """`config.method` names a registered method; its own `check_config` passes."""
    from jaxfaces.methods import get_method

    method = get_method(config.method)  # ValueError listing the valid names.
    method_check = getattr(method, "check_config", None)
    if method_check is not None:
        method_check(config)


def check_nst(config: ml_collections.ConfigDict) -> None:
    """A style-transfer config (`configs/nst.py`, `translate.py --method=nst`)."""
    from jaxfaces.methods import nst

    nst.Settings.from_config(config)  # Optimiser, pool, layers, weights, steps.
    one_of(config, "nst.init", nst.INITS)
    if config.nst.init == "mean" and not config.nst.get("mean_dir"):
        raise ValueError("config.nst.init='mean' needs config.nst.mean_dir (a folder of images)")
    at_least(config, "nst.size", 16)  # VGG19 pools four times before conv5_1.
    at_least(config, "nst.batch_size", 1)
    at_least(config, "nst.init_noise", 0, integer=False)
    at_least(config, "nst.lbfgs_memory", 1)
    above(config, "nst.lr", 0)


def check(config: ml_collections.ConfigDict) -> None:
    """Validates `config` (a training config, or a style-transfer one) before any compile.

    Raises:
      ValueError: one line naming the first bad key, its value and the valid range.
      FileNotFoundError: a data folder the config names does not exist.
    """
    if _value(config, "method", required=True) == "nst":
        check_nst(config)
        return
    check_train(config)
    check_optim(config)
    check_data(config)
    check_method(config)
