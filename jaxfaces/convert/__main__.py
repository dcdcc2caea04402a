"""Converts PyTorch weights to jaxfaces: `python -m jaxfaces.convert <subcommand> ...`.

  python -m jaxfaces.convert cyclegan --pth latest_net_G_A.pth [--pth_b latest_net_G_B.pth] \
      --out DIR
  python -m jaxfaces.convert vgg19 --pth vgg19-dcbb9e9d.pth [--out FILE] [--overwrite]
  python -m jaxfaces.convert inception --pth pt_inception-2015-12-05-6726825d.pth [--out FILE] \
      [--overwrite]

Each subcommand is a converter module with `add_arguments(parser)` and `main(args) -> str`.
Nothing that exists is replaced: `cyclegan` needs a new or empty --out folder, and `vgg19` /
`inception` replace an existing FILE only when jaxfaces wrote it (`jaxfaces.outputs`) or with
--overwrite. A refusal is one `error: ...` line and exit status 2.
"""

import argparse
import sys
import types

from jaxfaces.convert import inception, pytorch_cyclegan, pytorch_pix2pix, vgg19

COMMANDS: dict[str, tuple[types.ModuleType, str]] = {
    "cyclegan": (pytorch_cyclegan, "reference CycleGAN ResNet generators -> a checkpoint"),
    "pix2pix": (pytorch_pix2pix, "reference pix2pix U-Net generators -> a checkpoint"),
    "vgg19": (vgg19, "torchvision's ImageNet VGG19 -> the VGG19 weight file"),
    "inception": (inception, "pytorch-fid's FID InceptionV3 -> the FID/KID weight file"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the subcommand and its flags."""
    parser = argparse.ArgumentParser(
        prog="python -m jaxfaces.convert", description="Convert PyTorch weights to jaxfaces."
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}"
    )
    for name, (module, help_text) in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs one conversion; prints what it wrote, or the error (exit status 2)."""
    args = parse_args(argv)
    module, _ = COMMANDS[args.command]
    try:
        print(module.main(args), flush=True)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
