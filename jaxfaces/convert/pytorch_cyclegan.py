"""Converts reference CycleGAN weights (junyanz/pytorch-CycleGAN-and-pix2pix) to jaxfaces.

Reads the `.pth` state_dicts of the reference `ResnetGenerator` (`latest_net_G_A.pth`, the
public model zoo's `<name>.pth`) and `NLayerDiscriminator`, maps each PyTorch key to its Flax
parameter by an explicit table, and writes a checkpoint that `translate.py --ckpt=DIR` uses:

  python -m jaxfaces.convert cyclegan --pth latest_net_G_A.pth [--pth_b latest_net_G_B.pth] \
      --out DIR

`--pth` is G_A (A -> B, `--direction=AtoB`), `--pth_b` is G_B (B -> A, `--direction=BtoA`).
Weights: convolutions OIHW -> HWIO; transposed convolutions (in, out, kh, kw) -> the
spatially flipped HWIO kernel of `layers.ConvTranspose2x`; batch norm weight, bias,
running_mean, running_var -> scale, bias, mean, var.
"""

import argparse
import importlib.util
import os
import pathlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util

from jaxfaces.models import discriminators, generators

StateDict = dict[str, np.ndarray]
Source = str | os.PathLike | Mapping[str, Any]

CONV, CONV_T, NORM = "conv", "conv_transpose", "norm"
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
SHOW_KEYS = 8  # Keys quoted in error messages.


# --------------------------------------------------------------------------- reading files


def load_state_dict(path: str | os.PathLike) -> StateDict:
    """Reads a PyTorch `.pth` state_dict as NumPy arrays (float tensors as float32).

    Accepts a raw state_dict or one wrapped in a dict (`{"state_dict": ...}`, `{"model": ...}`)
    and strips the `module.` prefix that `nn.DataParallel` adds.

    Raises:
      FileNotFoundError: if `path` does not exist (names it).
      ImportError: if PyTorch is not installed.
      ValueError: if the file is not a state_dict of tensors.
    """
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no such PyTorch file: {path}")
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            "reading PyTorch .pth files needs PyTorch: pip install torch (the CPU build is enough)"
        ) from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types on bad pickles (UnpicklingError, ...).
        raise ValueError(
            f"cannot read {path} as a PyTorch state_dict ({type(e).__name__}: {e}); save "
            "weights with torch.save(net.state_dict(), path)"
        ) from e
    return _to_numpy(_unwrap(obj, path), path)


def _unwrap(obj: Any, path: pathlib.Path) -> Mapping[str, Any]:
    """The state_dict itself, or the one under a wrapper key such as "state_dict"."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state_dict")
    for key in WRAPPER_KEYS:
        if isinstance(obj.get(key), Mapping):
            return obj[key]
    return obj


def _to_numpy(sd: Mapping[str, Any], path: pathlib.Path) -> StateDict:
    import torch

    out = {}
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor; is this a "
                "state_dict (torch.save(net.state_dict(), path))?"
            )
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        out[key.removeprefix("module.")] = value.numpy()
    return out


# --------------------------------------------------------------------------- key tables


def generator_layout(n_blocks: int, dropout: bool) -> list[tuple[str, str, str]]:
    """(PyTorch module, Flax module path, kind) of each weighted layer of `ResnetGenerator`.

    The reference's `model` Sequential: 1 conv7 / 2 norm; 4-5 and 7-8 stride-2 conv / norm;
    10 .. 9+n_blocks residual blocks (conv_block 1 conv, 2 norm, then 5, 6 or, after a
    dropout layer, 6, 7); two (ConvTranspose2d, norm, ReLU); a pad and the last conv7.
    """
    layout = [("model.1", "conv_in/conv", CONV), ("model.2", "conv_in/norm", NORM)]
    for i in range(2):
        layout += [
            (f"model.{4 + 3 * i}", f"down_{i}/conv", CONV),
            (f"model.{5 + 3 * i}", f"down_{i}/norm", NORM),
        ]
    second = 6 if dropout else 5
    for i in range(n_blocks):
        block = f"model.{10 + i}.conv_block"
        layout += [
            (f"{block}.1", f"res_{i}/conv_0", CONV),
            (f"{block}.2", f"res_{i}/norm_0", NORM),
            (f"{block}.{second}", f"res_{i}/conv_1", CONV),
            (f"{block}.{second + 1}", f"res_{i}/norm_1", NORM),
        ]
    up = 10 + n_blocks
    for i in range(2):
        layout += [
            (f"model.{up + 3 * i}", f"up_{i}/conv", CONV_T),
            (f"model.{up + 3 * i + 1}", f"up_{i}/norm", NORM),
        ]
    layout.append((f"model.{up + 7}", "conv_out", CONV))
    return layout


def discriminator_layout(n_layers: int) -> list[tuple[str, str, str]]:
    """(PyTorch module, Flax module path, kind) of each weighted layer of the PatchGAN.

    The reference's `model` Sequential: 0 conv (LeakyReLU at 1), then for n = 1..n_layers a
    conv at 3n - 1 and its norm at 3n, and the last conv at 3 n_layers + 2.
    """
    layout = [("model.0", "conv_0", CONV)]
    for n in range(1, n_layers + 1):
        layout += [(f"model.{3 * n - 1}", f"conv_{n}", CONV), (f"model.{3 * n}", f"norm_{n}", NORM)]
    layout.append((f"model.{3 * n_layers + 2}", f"conv_{n_layers + 1}", CONV))
    return layout


def _conv_kernel(w: np.ndarray) -> np.ndarray:
    """Conv2d weight (out, in, kh, kw) -> HWIO."""
    return w.transpose(2, 3, 1, 0)


def _conv_transpose_kernel(w: np.ndarray) -> np.ndarray:
    """ConvTranspose2d weight (in, out, kh, kw) -> `ConvTranspose2x` kernel (flipped HWIO)."""
    return w[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)


def _same(w: np.ndarray) -> np.ndarray:
    return w


# PyTorch parameter name -> (Flax collection, leaf path under the module, transform), by kind.
LEAVES: dict[str, dict[str, tuple[str, str, Callable[[np.ndarray], np.ndarray]]]] = {
    CONV: {"weight": ("params", "kernel", _conv_kernel), "bias": ("params", "bias", _same)},
    CONV_T: {
        "weight": ("params", "kernel", _conv_transpose_kernel),
        "bias": ("params", "bias", _same),
    },
    NORM: {
        "weight": ("params", "BatchNorm_0/scale", _same),
        "bias": ("params", "BatchNorm_0/bias", _same),
        "running_mean": ("batch_stats", "BatchNorm_0/mean", _same),
        "running_var": ("batch_stats", "BatchNorm_0/var", _same),
    },
}
# Norm buffers that carry nothing Flax needs: the batch counter, and the running statistics
# that InstanceNorm layers of PyTorch < 0.4 saved (the reference drops them when loading).
IGNORED_NORM_BUFFERS = ("num_batches_tracked", "running_mean", "running_var")


def key_table(layout: list[tuple[str, str, str]]) -> dict[str, tuple[str, str, Callable]]:
    """Every PyTorch key a layout may hold -> (Flax collection, Flax path, transform)."""
    table = {}
    for module, path, kind in layout:
        for name, (collection, leaf, transform) in LEAVES[kind].items():
            table[f"{module}.{name}"] = (collection, f"{path}/{leaf}", transform)
    return table


# --------------------------------------------------------------------------- inference


def _describe(sd: Mapping[str, Any]) -> str:
    keys = list(sd)
    more = f", ... ({len(keys)} keys)" if len(keys) > SHOW_KEYS else ""
    return ", ".join(keys[:SHOW_KEYS]) + more


def _conv_weight(sd: Mapping[str, np.ndarray], key: str) -> np.ndarray | None:
    w = sd.get(key)
    return w if w is not None and w.ndim == 4 else None


def _norm_kind(sd: dict[str, np.ndarray], norm_weight: str, conv_bias: str) -> str:
    """batch (affine norms), instance (biased inner convolutions) or none (neither)."""
    if norm_weight in sd:
        return "batch"
    return "instance" if conv_bias in sd else "none"


def infer_generator_config(sd: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The `config.model.generator` fields of a reference ResnetGenerator state_dict.

    Returns name "resnet", ngf, n_blocks, norm ("batch" when the norms have affine weights,
    else "instance"), dropout (the second block conv at conv_block.6 rather than .5),
    upsample "transpose" and padding "reflect".

    Raises:
      ValueError: naming the keys, if `sd` is not a 3-channel ResnetGenerator state_dict.
    """
    first = _conv_weight(sd, "model.1.weight")
    if first is None or first.shape[2:] != (7, 7) or "model.10.conv_block.1.weight" not in sd:
        hint = ""
        if _conv_weight(sd, "model.0.weight") is not None:
            hint = " (it looks like a PatchGAN discriminator: model.0 is a convolution)"
        raise ValueError(
            "not a CycleGAN ResnetGenerator state_dict: expected a 7x7 convolution at "
            f"model.1.weight and residual blocks at model.10.conv_block.*{hint}; "
            f"got keys: {_describe(sd)}"
        )
    ngf, in_channels = first.shape[:2]
    n_blocks = 0
    while f"model.{10 + n_blocks}.conv_block.1.weight" in sd:
        n_blocks += 1
    block = "model.10.conv_block"
    dropout = (
        _conv_weight(sd, f"{block}.5.weight") is None
        and _conv_weight(sd, f"{block}.6.weight") is not None
    )
    last = _conv_weight(sd, f"model.{10 + n_blocks + 7}.weight")
    out_channels = None if last is None else last.shape[0]
    if in_channels != 3 or out_channels != 3:
        raise ValueError(
            f"only RGB -> RGB generators convert: model.1.weight has {in_channels} input "
            f"channels, model.{10 + n_blocks + 7}.weight has {out_channels} output channels"
        )
    return {
        "name": "resnet",
        "ngf": int(ngf),
        "n_blocks": n_blocks,
        "norm": _norm_kind(sd, norm_weight="model.2.weight", conv_bias="model.4.bias"),
        "upsample": "transpose",
        "padding": "reflect",
        "dropout": bool(dropout),
    }


def infer_discriminator_config(sd: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The `config.model.discriminator` fields (and input channels) of a PatchGAN state_dict.

    Raises:
      ValueError: naming the keys, if `sd` is not an NLayerDiscriminator state_dict.
    """
    first = _conv_weight(sd, "model.0.weight")
    if first is None or first.shape[2:] != (4, 4):
        raise ValueError(
            "not a PatchGAN (NLayerDiscriminator) state_dict: expected a 4x4 convolution at "
            f"model.0.weight; got keys: {_describe(sd)}"
        )
    n = 1
    while _conv_weight(sd, f"model.{3 * n - 1}.weight") is not None:
        n += 1
    n_layers = n - 2  # The last convolution found is the one-channel output.
    if n_layers < 1:
        raise ValueError(f"PatchGAN state_dict with too few convolutions: {_describe(sd)}")
    return {
        "name": "patchgan",
        "ndf": int(first.shape[0]),
        "n_layers": n_layers,
        "norm": _norm_kind(sd, norm_weight="model.3.weight", conv_bias="model.2.bias"),
        "in_channels": int(first.shape[1]),
    }


# --------------------------------------------------------------------------- conversion


def _flax_shapes(module: Any, channels: int, size: int) -> dict[tuple[str, str], tuple]:
    """(collection, "a/b/leaf") -> shape of every variable of `module`, without computing."""
    x = jnp.zeros((1, size, size, channels), jnp.float32)
    key = jax.random.key(0)
    variables = jax.eval_shape(lambda: module.init({"params": key, "dropout": key}, x, train=False))
    return {
        (collection, path): leaf.shape
        for collection, tree in variables.items()
        for path, leaf in traverse_util.flatten_dict(tree, sep="/").items()
    }


def convert(
    sd: Mapping[str, np.ndarray],
    layout: list[tuple[str, str, str]],
    shapes: dict[tuple[str, str], tuple],
) -> dict[str, Any]:
    """Maps a state_dict onto Flax variables of the given shapes, by the layout's key table.

    Every Flax variable must be filled and every PyTorch key used (norm counters and legacy
    instance-norm statistics aside); shapes must match.

    Raises:
      ValueError: naming the missing, unexpected or mis-shaped keys.
    """
    table = key_table(layout)
    needed = {k: v for k, v in table.items() if (v[0], v[1]) in shapes}
    unmapped = set(shapes) - {(c, p) for c, p, _ in needed.values()}
    if unmapped:
        raise ValueError(f"no PyTorch key maps to Flax variable(s) {sorted(unmapped)}")
    missing = [k for k in needed if k not in sd]
    if missing:
        raise ValueError(f"missing PyTorch key(s) {missing}; got keys: {_describe(sd)}")
    norms = {module for module, _, kind in layout if kind == NORM}
    unexpected = [
        k
        for k in sd
        if k not in needed
        and not (k.rsplit(".", 1)[0] in norms and k.rsplit(".", 1)[1] in IGNORED_NORM_BUFFERS)
    ]
    if unexpected:
        raise ValueError(
            f"unexpected PyTorch key(s) {unexpected}: this state_dict does not match the "
            "reference architecture its other keys describe"
        )
    flat = {}
    for key, (collection, path, transform) in needed.items():
        value = np.ascontiguousarray(transform(sd[key])).astype(np.float32)
        want = tuple(shapes[(collection, path)])
        if value.shape != want:
            raise ValueError(
                f"PyTorch key {key!r} has shape {tuple(sd[key].shape)}, which maps to "
                f"{value.shape}; Flax {collection}/{path} needs {want}"
            )
        flat[(collection, *path.split("/"))] = value
    return traverse_util.unflatten_dict(flat)


def generator_variables(sd: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Flax variables `{"params": ..., ["batch_stats": ...]}` of a reference ResnetGenerator.

    They fit `generators.ResnetGenerator` built from `infer_generator_config(sd)`.
    """
    cfg = infer_generator_config(sd)
    net = generators.make_generator(cfg)
    shapes = _flax_shapes(net, channels=3, size=32)
    return convert(sd, generator_layout(cfg["n_blocks"], cfg["dropout"]), shapes)


def discriminator_variables(sd: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Flax variables of a reference NLayerDiscriminator, for `discriminators.PatchGAN`."""
    cfg = infer_discriminator_config(sd)
    net = discriminators.PatchGAN(ndf=cfg["ndf"], n_layers=cfg["n_layers"], norm=cfg["norm"])
    shapes = _flax_shapes(net, channels=cfg["in_channels"], size=2 ** (cfg["n_layers"] + 3))
    return convert(sd, discriminator_layout(cfg["n_layers"]), shapes)


# --------------------------------------------------------------------------- checkpoints


def _as_state_dict(source: Source) -> StateDict:
    return dict(source) if isinstance(source, Mapping) else load_state_dict(source)


def write_checkpoint(
    out_dir: str | os.PathLike,
    config: ml_collections.ConfigDict,
    g_a: Source | None = None,
    g_b: Source | None = None,
) -> pathlib.Path:
    """Writes a jaxfaces CycleGAN checkpoint (step 0) holding the given generators.

    The checkpoint is for translation only: the method's `from_translators` state has no
    discriminators, optimizer states or image pools, so `train.py` cannot resume from it.

    Args:
      out_dir: a new or empty folder; `translate.py --ckpt=OUT_DIR` reads it.
      config: the CycleGAN config recorded with it (`configs/cyclegan.py`'s, the CLI's
        default); its `model.generator` is set to the converted architecture.
      g_a: the A -> B generator (reference G_A): a state_dict or a `.pth` path.
      g_b: the B -> A generator (reference G_B): a state_dict or a `.pth` path.

    Returns:
      The checkpoint folder (`out_dir`, resolved).

    Raises:
      ValueError: if neither generator is given, they differ in architecture, `out_dir` is
        not empty, or a state_dict does not convert.
    """
    given = {name: src for name, src in (("g_a", g_a), ("g_b", g_b)) if src is not None}
    if not given:
        raise ValueError("give at least one generator (g_a: A -> B, g_b: B -> A)")
    out_dir = check_new_folder(out_dir)
    sds = {name: _as_state_dict(src) for name, src in given.items()}
    cfgs = {name: infer_generator_config(sd) for name, sd in sds.items()}
    if len({tuple(sorted(c.items())) for c in cfgs.values()}) > 1:
        raise ValueError(f"G_A and G_B differ in architecture: {cfgs['g_a']} vs {cfgs['g_b']}")
    direction = {"g_a": "AtoB", "g_b": "BtoA"}
    variables = {direction[name]: generator_variables(sd) for name, sd in sds.items()}
    config = ml_collections.ConfigDict(config.to_dict())  # A copy, unlocked.
    config.model.generator.update(next(iter(cfgs.values())))
    return write_translation_checkpoint(out_dir, config, variables)


def check_new_folder(out_dir: str | pathlib.Path) -> pathlib.Path:
    """`out_dir` resolved, if it is new or empty: a checkpoint folder is written whole,
    never into (or over) anything that exists. ValueError naming it otherwise."""
    out_dir = pathlib.Path(out_dir).expanduser().resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"output folder {out_dir} is a file; choose a new or empty folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"output folder {out_dir} exists and is not empty; choose a new one")
    return out_dir


def write_translation_checkpoint(
    out_dir: pathlib.Path, config: ml_collections.ConfigDict, variables: dict
) -> pathlib.Path:
    """Writes `config.method`'s translation-only state holding the converted generators'
    {direction: Flax variables} (its `from_translators`) as step 0 of a checkpoint in
    `out_dir` (checked by `check_new_folder`); returns `out_dir`."""
    from jaxfaces.methods import get_method
    from jaxfaces.training import checkpoint

    method = get_method(config.method)
    if method.from_translators is None:
        raise ValueError(f"config.method {config.method!r} cannot hold converted generators")
    state = method.from_translators(config, variables)
    mngr = checkpoint.manager(out_dir)
    checkpoint.save(mngr, 0, state, config)
    mngr.wait_until_finished()
    mngr.close()
    return out_dir


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `cyclegan` subcommand's flags."""
    parser.add_argument("--pth", help="G_A (A -> B) state_dict, e.g. latest_net_G_A.pth")
    parser.add_argument("--pth_b", help="G_B (B -> A) state_dict, e.g. latest_net_G_B.pth")
    parser.add_argument("--out", required=True, help="new (or empty) checkpoint folder")
    parser.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        help="the CycleGAN config file recorded with the checkpoint (default: %(default)s)",
    )


#: The reference config, beside the package in the repository.
DEFAULT_CONFIG = pathlib.Path(__file__).resolve().parents[2] / "configs" / "cyclegan.py"


def _load_config(path: str | os.PathLike) -> ml_collections.ConfigDict:
    """`get_config()` of a config file (as train.py's --config reads it)."""
    path = pathlib.Path(path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"--config: no config file at {path}")
    root = str(path.parent.parent)  # Variant configs import their base: `from configs import`.
    if root not in sys.path:
        sys.path.insert(0, root)
    spec = importlib.util.spec_from_file_location(f"_jaxfaces_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def main(args: argparse.Namespace) -> str:
    """Runs the `cyclegan` subcommand; returns the report to print."""
    if not args.pth and not args.pth_b:
        raise ValueError("give --pth (G_A, A -> B) and/or --pth_b (G_B, B -> A)")
    config = _load_config(args.config)
    out = write_checkpoint(args.out, config, g_a=args.pth, g_b=args.pth_b)
    from jaxfaces.training import checkpoint

    config, _, _ = checkpoint.load(out, 0)
    g = config.model.generator
    lines = [
        f"wrote {out} (step 0): ResNet generator ngf {g.ngf}, n_blocks {g.n_blocks}, "
        f"{g.norm} norm, dropout {g.dropout}"
    ]
    for direction, path in (("AtoB", args.pth), ("BtoA", args.pth_b)):
        if path:
            lines.append(f"  {direction} from {path}")
    lines.append(
        f"translate: python translate.py --ckpt={out} --direction=AtoB|BtoA "
        "--input=IMAGES --output=OUT"
    )
    return "\n".join(lines)
