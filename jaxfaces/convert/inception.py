"""Converts pytorch-fid's FID InceptionV3 weights to jaxfaces (`models.inception`).

  python -m jaxfaces.convert inception --pth pt_inception-2015-12-05-6726825d.pth \
      [--out ~/.cache/jaxfaces/inception_fid.msgpack]

The `.pth` (from `models.inception.FID_WEIGHTS_URL`) is a state_dict of torchvision's
`Inception3` layout as pytorch-fid patches it. Flax modules carry the PyTorch names, so
each `<module>.conv.weight` (OIHW -> HWIO), `<module>.bn.weight`, `.bias`, `.running_mean`,
`.running_var` maps to `<module>/conv/kernel`, `<module>/bn/scale`, `bias`, `mean`, `var`.
The 1008-way classifier (`fc.*`) is checked and dropped: FID uses the pool features.
The result is written as Flax msgpack (no pickle), with `FILE.sha256` beside it
(`models.weights.save`). An existing FILE that jaxfaces has no record of writing is not
replaced without --overwrite (`jaxfaces.outputs`).
"""

import argparse
import functools
import os
import pathlib
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxfaces import outputs
from jaxfaces.convert import pytorch_cyclegan
from jaxfaces.models import inception, weights

#: Keys of the file that carry nothing the features need, with their shapes.
CLASSIFIER = {"fc.weight": (1008, inception.FEATURES), "fc.bias": (1008,)}
#: PyTorch batch-norm leaf -> (Flax collection, leaf).
BN_LEAVES = {
    "weight": ("params", "scale"),
    "bias": ("params", "bias"),
    "running_mean": ("batch_stats", "mean"),
    "running_var": ("batch_stats", "var"),
}
SHOW_KEYS = 8


@functools.cache
def flax_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
    """(collection, module, ..., leaf) -> shape of every `InceptionV3` variable, untraced."""
    model = inception.InceptionV3(resize=False)
    x = jnp.zeros((1, 75, 75, 3), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
    return {path: leaf.shape for path, leaf in traverse_util.flatten_dict(variables).items()}


def key_table(
    shapes: Mapping[tuple[str, ...], tuple[int, ...]],
) -> dict[str, tuple[str, ...]]:
    """PyTorch key -> Flax variable path, for every BasicConv2d of the model."""
    modules = sorted({path[1:-2] for path in shapes if path[-2] == "conv"})
    table = {}
    for module in modules:
        prefix = ".".join(module)
        table[f"{prefix}.conv.weight"] = ("params", *module, "conv", "kernel")
        for name, (collection, leaf) in BN_LEAVES.items():
            table[f"{prefix}.bn.{name}"] = (collection, *module, "bn", leaf)
    return table


def _show(keys: list[str]) -> str:
    more = f", ... ({len(keys)} in all)" if len(keys) > SHOW_KEYS else ""
    return ", ".join(keys[:SHOW_KEYS]) + more


def convert(sd: Mapping[str, np.ndarray]) -> dict:
    """Flax variables `{"params", "batch_stats"}` of `InceptionV3` from the FID state_dict.

    Raises:
      ValueError: naming the missing, unexpected or mis-shaped keys.
    """
    shapes = flax_shapes()
    table = key_table(shapes)
    expected = set(table) | set(CLASSIFIER)
    missing = sorted(expected - set(sd))
    unexpected = sorted(
        k for k in sd if k not in expected and not k.endswith(".bn.num_batches_tracked")
    )
    if missing or unexpected:
        raise ValueError(
            "not the FID InceptionV3 state_dict (pt_inception-2015-12-05-6726825d.pth): "
            f"missing key(s) [{_show(missing)}]; unexpected key(s) [{_show(unexpected)}]"
        )
    for key, want in CLASSIFIER.items():
        if tuple(sd[key].shape) != want:
            raise ValueError(f"PyTorch key {key!r} has shape {tuple(sd[key].shape)}, not {want}")
    flat = {}
    for key, path in table.items():
        value = np.asarray(sd[key], np.float32)
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        if value.shape != shapes[path]:
            raise ValueError(
                f"PyTorch key {key!r} has shape {tuple(sd[key].shape)}, which maps to "
                f"{value.shape}; Flax {'/'.join(path)} needs {shapes[path]}"
            )
        flat[path] = np.ascontiguousarray(value)
    return traverse_util.unflatten_dict(flat)


def convert_file(pth: str | os.PathLike, out: str | os.PathLike) -> tuple[pathlib.Path, str]:
    """Reads the `.pth` (`torch.load(weights_only=True)`), converts it, writes `out`."""
    return weights.save(convert(pytorch_cyclegan.load_state_dict(pth)), out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `inception` subcommand's flags."""
    parser.add_argument(
        "--pth", required=True, help=f"pytorch-fid's weights, from {inception.FID_WEIGHTS_URL}"
    )
    parser.add_argument(
        "--out",
        default=str(inception.DEFAULT_PATH),
        help=f"converted file (default {inception.DEFAULT_PATH}: found there when neither a "
        f"path nor ${inception.ENV_VAR} is given)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file that jaxfaces has no record of writing",
    )


def main(args: argparse.Namespace) -> str:
    """Runs the `inception` subcommand; returns the report to print."""
    out = pathlib.Path(args.out).expanduser()
    with outputs.guard(out.parent, weights.files(out), [args.pth], args.overwrite, flag="--out"):
        variables = convert(pytorch_cyclegan.load_state_dict(args.pth))
        path, digest = weights.save(variables, out)
    n = sum(np.size(v) for v in jax.tree.leaves(variables))
    lines = [f"wrote {path} ({n:,} values, SHA-256 {digest}) and {path.name}.sha256"]
    if path != inception.DEFAULT_PATH.expanduser():
        lines.append(f"use it with: export {inception.ENV_VAR}={path}")
    return "\n".join(lines)
