"""Converts torchvision's ImageNet VGG19 to the jaxfaces weight file.

  python -m jaxfaces.convert vgg19 --pth vgg19-dcbb9e9d.pth [--out FILE]
  python -m jaxfaces.convert vgg19 --torchvision [--out FILE]   # needs torchvision + network

The `.pth` is https://download.pytorch.org/models/vgg19-dcbb9e9d.pth (keys `features.0.weight`
... `features.34.bias`, `classifier.*`); the classifier is dropped, kernels go OIHW -> HWIO.
The result is msgpack (no pickle) with a `.sha256` beside it (`models.weights.save`); without
--out it goes to the default path that `jaxfaces.models.vgg.find_weights` searches last. An
existing FILE that jaxfaces has no record of writing is not replaced without --overwrite
(`jaxfaces.outputs`).
"""

import argparse
import pathlib
from collections.abc import Mapping

import numpy as np

from jaxfaces import outputs
from jaxfaces.convert.pytorch_cyclegan import load_state_dict
from jaxfaces.models import vgg, weights


def params_from_state_dict(sd: Mapping[str, np.ndarray]) -> dict:
    """The VGG19 parameter pytree from torchvision's `vgg19().state_dict()`.

    Raises:
      ValueError: naming missing keys or mismatched shapes.
    """
    params, problems = {}, []
    in_channels = 3
    for block, (features, n) in enumerate(vgg.BLOCKS):
        for i in range(n):
            name = f"conv{block + 1}_{i + 1}"
            index = vgg.torchvision_index(name)
            expected = {"weight": (features, in_channels, 3, 3), "bias": (features,)}
            found = {leaf: sd.get(f"features.{index}.{leaf}") for leaf in expected}
            for leaf, shape in expected.items():
                if found[leaf] is None:
                    problems.append(f"missing features.{index}.{leaf} ({name})")
                elif found[leaf].shape != shape:
                    problems.append(
                        f"features.{index}.{leaf} ({name}) has shape {found[leaf].shape}, "
                        f"expected {shape}"
                    )
            if all(v is not None and v.shape == expected[k] for k, v in found.items()):
                params[name] = {
                    "kernel": np.ascontiguousarray(
                        found["weight"].transpose(2, 3, 1, 0), np.float32
                    ),
                    "bias": np.asarray(found["bias"], np.float32),
                }
            in_channels = features
    if problems:
        raise ValueError("not a torchvision VGG19 state_dict: " + "; ".join(problems[:6]))
    return params


def torchvision_state_dict() -> dict[str, np.ndarray]:
    """torchvision's ImageNet VGG19 weights (downloads them; needs torchvision and a network)."""
    try:
        import torchvision
    except ImportError as e:
        raise ImportError(
            "--torchvision needs torchvision (pip install torchvision); or download "
            f"{vgg.TORCHVISION_URL} and pass --pth"
        ) from e
    model = torchvision.models.vgg19(weights="IMAGENET1K_V1")
    return {k: v.detach().float().numpy() for k, v in model.state_dict().items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The vgg19 subcommand's flags."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pth", help="torchvision's vgg19-dcbb9e9d.pth (or any VGG19 state_dict)")
    source.add_argument(
        "--torchvision", action="store_true", help="build torchvision's pretrained vgg19 instead"
    )
    parser.add_argument("--out", default=None, help=f"output file (default {vgg.default_path()})")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file that jaxfaces has no record of writing",
    )


def main(args: argparse.Namespace) -> str:
    """Converts and writes the weights; returns what was written."""
    out = pathlib.Path(args.out or vgg.default_path()).expanduser()
    inputs = [args.pth] if args.pth else []
    with outputs.guard(out.parent, weights.files(out), inputs, args.overwrite, flag="--out"):
        sd = torchvision_state_dict() if args.torchvision else load_state_dict(args.pth)
        out, digest = weights.save(params_from_state_dict(sd), out)
    return f"wrote VGG19 weights to {out} (sha256 {digest[:16]}...)"
