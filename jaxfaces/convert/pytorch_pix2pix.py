"""Converts reference pix2pix U-Net generators (junyanz/pytorch-CycleGAN-and-pix2pix).

Reads the `.pth` state_dict of the reference `UnetGenerator` (`latest_net_G.pth`, the public
model zoo's `<name>.pth`), infers its depth, width and norm, maps each PyTorch key to its
Flax parameter by an explicit table (strict: every key used, every shape checked) and writes
a pix2pix checkpoint that `translate.py --ckpt=DIR` uses:

  python -m jaxfaces.convert pix2pix --pth latest_net_G.pth --out DIR [--direction AtoB] \
      [--pth_b OTHER_WAY.pth] [--no_dropout]

The reference's key layout is recursive: level 0 is `model.model`, level 1
`model.model.1.model`, each deeper level `<parent>.3.model`; in a level, 1 is the down
convolution, 2 its norm, 5 the up (transposed) convolution and 6 its norm (the innermost:
1 down, 3 up, 4 norm; the outermost: 0 down, 3 up with a bias). Dropout has no weights, so
it cannot be read from the file: the reference trains pix2pix with it (the default here;
`--no_dropout` for generators trained with the reference's --no_dropout).
"""

import argparse
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import ml_collections
import numpy as np

from jaxfaces.convert import pytorch_cyclegan as common
from jaxfaces.convert.pytorch_cyclegan import CONV, CONV_T, NORM
from jaxfaces.models import generators


def level_prefix(i: int) -> str:
    """The state_dict prefix of U-Net level i (0 outermost)."""
    prefix = "model.model"
    for j in range(1, i + 1):
        prefix += ".1.model" if j == 1 else ".3.model"
    return prefix


def unet_layout(num_downs: int) -> list[tuple[str, str, str]]:
    """(PyTorch module, Flax module path, kind) of each weighted layer of `UnetGenerator`."""
    n = num_downs
    layout = [(f"{level_prefix(0)}.0", "down_0/conv", CONV)]
    for i in range(1, n):
        p = level_prefix(i)
        layout.append((f"{p}.1", f"down_{i}/conv", CONV))
        if i < n - 1:
            layout += [
                (f"{p}.2", f"down_{i}/norm", NORM),
                (f"{p}.5", f"up_{i}/conv", CONV_T),
                (f"{p}.6", f"up_{i}/norm", NORM),
            ]
        else:
            layout += [(f"{p}.3", f"up_{i}/conv", CONV_T), (f"{p}.4", f"up_{i}/norm", NORM)]
    layout.append((f"{level_prefix(0)}.3", "up_0/conv", CONV_T))
    return layout


def infer_generator_config(sd: Mapping[str, np.ndarray], dropout: bool = True) -> dict[str, Any]:
    """The `config.model.generator` fields of a reference UnetGenerator state_dict.

    Returns name ("unet_256" / "unet_128" for 8 / 7 levels, else "unet"), ngf, num_downs,
    norm ("batch" with affine norms, "instance" with biased inner convolutions, else
    "none") and `dropout` as given (a state_dict does not record it).

    Raises:
      ValueError: naming the keys, if `sd` is not an RGB -> RGB UnetGenerator state_dict.
    """
    first = common._conv_weight(sd, "model.model.0.weight")
    if first is None or first.shape[2:] != (4, 4) or "model.model.3.weight" not in sd:
        hint = ""
        if common._conv_weight(sd, "model.1.weight") is not None:
            hint = " (it looks like a CycleGAN ResnetGenerator: use `convert cyclegan`)"
        elif common._conv_weight(sd, "model.0.weight") is not None:
            hint = " (it looks like a PatchGAN discriminator)"
        raise ValueError(
            "not a pix2pix UnetGenerator state_dict: expected a 4x4 convolution at "
            f"model.model.0.weight and the output layer at model.model.3.weight{hint}; "
            f"got keys: {common._describe(sd)}"
        )
    n = 1
    while common._conv_weight(sd, f"{level_prefix(n)}.1.weight") is not None:
        n += 1
    if n < 5 or common._conv_weight(sd, f"{level_prefix(n - 1)}.3.weight") is None:
        raise ValueError(
            f"UnetGenerator state_dict with {n} levels found (the reference builds at least 5) "
            f"or no innermost up convolution at {level_prefix(n - 1)}.3.weight"
        )
    ngf, in_channels = first.shape[:2]
    out_channels = sd["model.model.3.weight"].shape[1]
    if in_channels != 3 or out_channels != 3:
        raise ValueError(
            f"only RGB -> RGB generators convert: model.model.0.weight has {in_channels} "
            f"input channels, model.model.3.weight has {out_channels} output channels"
        )
    p1 = level_prefix(1)
    return {
        "name": {8: "unet_256", 7: "unet_128"}.get(n, "unet"),
        "ngf": int(ngf),
        "num_downs": n,
        "norm": common._norm_kind(sd, norm_weight=f"{p1}.2.weight", conv_bias=f"{p1}.1.bias"),
        "dropout": bool(dropout),
    }


def generator_variables(sd: Mapping[str, np.ndarray], dropout: bool = True) -> dict[str, Any]:
    """Flax variables `{"params": ..., ["batch_stats": ...]}` of a reference UnetGenerator,
    for `generators.UnetGenerator` built from `infer_generator_config(sd)`."""
    cfg = infer_generator_config(sd, dropout)
    net = generators.make_generator(cfg)
    shapes = common._flax_shapes(net, channels=3, size=2 ** cfg["num_downs"])
    return common.convert(sd, unet_layout(cfg["num_downs"]), shapes)


def write_checkpoint(
    out_dir: str | os.PathLike,
    config: ml_collections.ConfigDict,
    generators_by_direction: dict[str, common.Source],
    dropout: bool = True,
) -> pathlib.Path:
    """Writes a pix2pix checkpoint (step 0, translation only) holding the given generators.

    Args:
      out_dir: a new or empty folder; `translate.py --ckpt=OUT_DIR` reads it.
      config: the pix2pix config recorded with it (the CLI's default: configs/pix2pix.py);
        its `model.generator` is set to the converted architecture and `pix2pix.directions`
        to the directions given.
      generators_by_direction: {"AtoB" | "BtoA": state_dict or `.pth` path}.
      dropout: whether the generators were trained with dropout (the reference default).

    Returns:
      The checkpoint folder (`out_dir`, resolved).

    Raises:
      ValueError: if no generator is given, they differ in architecture, `out_dir` is not
        empty, or a state_dict does not convert.
    """
    from jaxfaces.methods import base

    if not generators_by_direction:
        raise ValueError("give at least one generator")
    for direction in generators_by_direction:
        base.check_direction(direction)
    out_dir = common.check_new_folder(out_dir)
    sds = {d: common._as_state_dict(src) for d, src in generators_by_direction.items()}
    cfgs = {d: infer_generator_config(sd, dropout) for d, sd in sds.items()}
    if len({tuple(sorted(c.items())) for c in cfgs.values()}) > 1:
        raise ValueError(f"the generators differ in architecture: {cfgs}")
    variables = {d: generator_variables(sd, dropout) for d, sd in sds.items()}
    config = ml_collections.ConfigDict(config.to_dict())  # A copy, unlocked.
    config.model.generator.update(next(iter(cfgs.values())))
    config.pix2pix.directions = "both" if len(sds) == 2 else next(iter(sds))
    return common.write_translation_checkpoint(out_dir, config, variables)


#: The reference config, beside the package in the repository.
DEFAULT_CONFIG = pathlib.Path(__file__).resolve().parents[2] / "configs" / "pix2pix.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `pix2pix` subcommand's flags."""
    parser.add_argument("--pth", help="the generator's state_dict, e.g. latest_net_G.pth")
    parser.add_argument(
        "--direction",
        default="AtoB",
        choices=("AtoB", "BtoA"),
        help="the way --pth translates in the checkpoint (default %(default)s)",
    )
    parser.add_argument("--pth_b", help="optional: a generator for the other direction")
    parser.add_argument("--out", required=True, help="new (or empty) checkpoint folder")
    parser.add_argument(
        "--no_dropout",
        action="store_true",
        help="the generators were trained without dropout (the reference's --no_dropout)",
    )
    parser.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        help="the pix2pix config file recorded with the checkpoint (default: %(default)s)",
    )


def main(args: argparse.Namespace) -> str:
    """Runs the `pix2pix` subcommand; returns the report to print."""
    if not args.pth:
        raise ValueError("give --pth (the generator, e.g. latest_net_G.pth)")
    given = {args.direction: args.pth}
    if args.pth_b:
        given[{"AtoB": "BtoA", "BtoA": "AtoB"}[args.direction]] = args.pth_b
    config = common._load_config(args.config)
    out = write_checkpoint(args.out, config, given, dropout=not args.no_dropout)
    from jaxfaces.training import checkpoint

    g = checkpoint.load(out, 0)[0].model.generator
    lines = [
        f"wrote {out} (step 0): U-Net {g.num_downs} levels ({g.name}), ngf {g.ngf}, "
        f"{g.norm} norm, dropout {g.dropout}"
    ]
    lines += [f"  {d} from {path}" for d, path in given.items()]
    lines.append(
        f"translate: python translate.py --ckpt={out} --direction="
        f"{'|'.join(given)} --input=IMAGES --output=OUT"
    )
    return "\n".join(lines)
