"""Image-to-image generators: the reference CycleGAN ResNet generator and pix2pix U-Net.

Parameter paths follow the architecture (`conv_in`, `down_0`, `res_3/conv_1`, `up_1`,
`conv_out`; the U-Net's `down_i/conv`, `up_i/norm`) so that `jaxfaces.convert` maps
PyTorch keys by a table.
"""

import functools
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfaces.models import fast_conv, layers


class ConvNormReLU(nn.Module):
    """A padded convolution (or x2 upsampling convolution), a norm and a ReLU."""

    features: int
    kernel: int = 3
    stride: int = 1
    pad_width: int = 1
    norm: str = "instance"
    padding: str = "reflect"
    upsample: str | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        bias = layers.uses_bias(self.norm)
        if self.upsample:
            conv = layers.upsample_conv(
                self.features, self.upsample, self.padding, bias, self.dtype
            )
        else:
            conv = layers.PaddedConv(
                self.features,
                self.kernel,
                self.stride,
                self.pad_width,
                self.padding,
                bias,
                self.dtype,
                name="conv",
            )
        x = conv(x)
        x = layers.Norm(self.norm, name="norm")(x, train)
        return nn.relu(x)


class ResnetBlock(nn.Module):
    """x + (pad, conv3x3, norm, ReLU, [dropout 0.5], pad, conv3x3, norm)(x)."""

    norm: str = "instance"
    padding: str = "reflect"
    dropout: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        dim = x.shape[-1]
        bias = layers.uses_bias(self.norm)
        conv = functools.partial(layers.PaddedConv, dim, 3, 1, 1, self.padding, bias, self.dtype)
        y = conv(name="conv_0")(x)
        y = nn.relu(layers.Norm(self.norm, name="norm_0")(y, train))
        if self.dropout:
            y = nn.Dropout(0.5, deterministic=not train)(y)
        y = conv(name="conv_1")(y)
        y = layers.Norm(self.norm, name="norm_1")(y, train)
        return x + y


class ResnetGenerator(nn.Module):
    """The CycleGAN generator (Johnson et al. 2016 as adapted by Zhu et al. 2017).

    c7s1-ngf, two stride-2 convolutions (d2ngf, d4ngf), `n_blocks` residual blocks, two x2
    upsamplings (u2ngf, u ngf), c7s1-3 and tanh. With ngf=64, 9 blocks and instance norm it
    has 11,378,179 parameters, as the reference. Input and output are NHWC in [-1, 1]; H and
    W must be multiples of 4 (`stride`).
    """

    stride: ClassVar[int] = 4  # Input sides must be multiples of this.
    ngf: int = 64
    n_blocks: int = 9
    norm: str = "instance"
    upsample: str = "transpose"
    padding: str = "reflect"
    dropout: bool = False
    out_channels: int = 3
    dtype: Any = jnp.float32
    scan_blocks: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        h, w = x.shape[1:3]
        if h % self.stride or w % self.stride:
            raise ValueError(
                f"ResnetGenerator needs H and W divisible by {self.stride}, got {h}x{w}"
            )
        block = functools.partial(
            ConvNormReLU, norm=self.norm, padding=self.padding, dtype=self.dtype
        )
        x = x.astype(self.dtype)
        x = block(self.ngf, kernel=7, pad_width=3, name="conv_in")(x, train)
        for i in range(2):
            x = block(
                self.ngf * 2 ** (i + 1), stride=2, pad_width=1, padding="zero", name=f"down_{i}"
            )(x, train)
        x = self._residual_blocks(x, train)
        for i in range(2):
            x = block(self.ngf * 2 ** (1 - i), upsample=self.upsample, name=f"up_{i}")(x, train)
        x = layers.PaddedConv(
            self.out_channels, 7, 1, 3, self.padding, True, self.dtype, name="conv_out"
        )(x)
        return jnp.tanh(x.astype(jnp.float32))

    def _residual_blocks(self, x: jax.Array, train: bool) -> jax.Array:
        """The residual blocks `res_0 .. res_{n-1}`, one after the other.

        Under `scan_blocks` (and a norm without running statistics) the blocks run as one
        `lax.scan` over their parameters stacked on a new leading axis: the same function
        and the same parameter tree (`res_i/...`, as the reference's), but XLA compiles one
        block instead of `n_blocks` copies. At the reference's 9 blocks the train step then
        compiles in about half the time (128 px batch 4: 51 -> 26 s) but runs up to 25% slower
        on the CPU (docs/BENCHMARKS.md, "Compile time"), so it is off by default: turn it
        on where the wait before the first step matters more than the steps.
        Initialisation always runs the blocks one by one (it creates their parameters).
        """
        make = functools.partial(ResnetBlock, self.norm, self.padding, self.dropout, self.dtype)
        blocks = [make(name=f"res_{i}") for i in range(self.n_blocks)]
        scan = self.scan_blocks and self.norm != "batch"
        if not scan or self.is_initializing():
            for b in blocks:
                x = b(x, train)
            return x
        params = self.variables["params"]
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[params[b.name] for b in blocks])
        use_rng = self.dropout and train
        keys = jax.random.split(self.make_rng("dropout"), self.n_blocks) if use_rng else None

        def body(carry: jax.Array, xs: tuple) -> tuple[jax.Array, None]:
            p, key = xs
            rngs = {"dropout": key} if use_rng else None
            return make().apply({"params": p}, carry, train, rngs=rngs), None

        x, _ = jax.lax.scan(body, x, (stacked, keys))
        return x


class ConvTranspose4x4(nn.Module):
    """PyTorch `ConvTranspose2d(k=4, stride=2, padding=1)`: doubles H and W.

    The kernel is stored as the equivalent direct convolution over the zero-dilated input
    (HWIO, spatially flipped with respect to PyTorch's IOHW kernel): the converter maps
    `w_torch[i, o, 3 - h, 3 - w] -> kernel[h, w, i, o]`. It runs as four 2x2 convolutions,
    one per output phase (no multiplications by inserted zeros): with x padded by 1, output
    row 2r + a reads padded rows r + a and r + a + 1 with kernel rows a and a + 2.
    """

    features: int
    use_bias: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", layers.conv_init, (4, 4, x.shape[-1], self.features))
        n, h, w, _ = x.shape
        xp = layers.pad(x.astype(self.dtype), 1, "zero")
        k = kernel.astype(self.dtype)
        rows = []
        for a in range(2):
            cols = []
            for b in range(2):
                phase = k[a::2, b::2]  # Taps (a, a + 2) x (b, b + 2).
                cols.append(fast_conv.conv2d(xp[:, a : a + h + 1, b : b + w + 1], phase))
            rows.append(jnp.stack(cols, axis=3))  # (N, H, W, 2 [b], O)
        y = jnp.stack(rows, axis=2)  # (N, H, 2 [a], W, 2 [b], O)
        y = y.reshape(n, 2 * h, 2 * w, self.features)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
        return y


class UnetDown(nn.Module):
    """A U-Net level's way down: [LeakyReLU 0.2], 4x4 stride-2 conv, [norm]."""

    features: int
    activation: bool = True
    normalise: bool = True
    norm: str = "batch"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        if self.activation:
            x = layers.leaky_relu(x)
        bias = layers.uses_bias(self.norm)
        x = layers.PaddedConv(self.features, 4, 2, 1, "zero", bias, self.dtype, name="conv")(x)
        if self.normalise:
            x = layers.Norm(self.norm, name="norm")(x, train)
        return x


class UnetUp(nn.Module):
    """A U-Net level's way up: ReLU, x2 upsampling conv, [norm], [dropout 0.5].

    The upsampling conv is the reference's 4x4 stride-2 transposed convolution
    (`upsample="transpose"`), or the thesis's resize-convolution ("nearest" / "bilinear": x2
    resize then a 3x3 convolution, zero-padded; no period-2 checkerboard).
    """

    features: int
    outermost: bool = False
    dropout: bool = False
    norm: str = "batch"
    upsample: str = "transpose"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        bias = self.outermost or layers.uses_bias(self.norm)
        if self.upsample == "transpose":
            conv = ConvTranspose4x4(self.features, bias, self.dtype, name="conv")
        else:
            conv = layers.upsample_conv(self.features, self.upsample, "zero", bias, self.dtype)
        x = conv(nn.relu(x))
        if self.outermost:
            return x
        x = layers.Norm(self.norm, name="norm")(x, train)
        if self.dropout:
            x = nn.Dropout(0.5, deterministic=not train)(x)
        return x


class UnetGenerator(nn.Module):
    """The pix2pix U-Net (the reference `UnetGenerator`, Isola et al. 2017).

    `num_downs` 4x4 stride-2 convolutions (filters ngf, 2 ngf, 4 ngf, then 8 ngf), each but
    the first after a LeakyReLU 0.2 and each but the first and last followed by a norm; then
    as many 4x4 stride-2 transposed convolutions back up, each after a ReLU, each but the last
    followed by a norm and concatenated after the skip connection of its level ([skip, up],
    the reference's channel order); tanh at the end. With `dropout` the `num_downs - 5`
    8-ngf levels above the innermost drop half their up-path activations (in training mode).
    unet_256 (8 downs) with ngf 64, batch norm and dropout has 54,413,955 parameters, unet_128
    (7) 41,828,995, as the reference. H and W must be multiples of 2**num_downs (`stride`).

    Parameter paths: `down_i/conv`, `down_i/norm` and `up_i/conv`, `up_i/norm` for level i
    (0 outermost, num_downs - 1 innermost).

    With `nz` > 0 (BicycleGAN, Zhu et al. 2017) the U-Net also takes a latent code z of
    shape (N, nz), broadcast over H x W and concatenated on the channel axis: to the image
    only (`where_add="input"`, the authors' G_Unet_add_input) or to the input of every
    level's way down (`"all"`, G_Unet_add_all: z enters before that level's LeakyReLU, the
    skip connections carry the activations without z). Only the down convolutions' input
    channels grow; nz = 0 (the default) is the pix2pix U-Net above, unchanged.

    `upsample` "nearest" or "bilinear" replaces every transposed convolution by a
    resize-convolution (`UnetUp`); "transpose" (the default) is the reference.
    """

    ngf: int = 64
    num_downs: int = 8
    norm: str = "batch"
    dropout: bool = True
    out_channels: int = 3
    nz: int = 0
    where_add: str = "input"
    upsample: str = "transpose"
    dtype: Any = jnp.float32

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this: 2**num_downs."""
        return 2**self.num_downs

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True, z: jax.Array | None = None) -> jax.Array:
        n = self.num_downs
        with_z = _latent_injector(self.nz, self.where_add, x, z)
        if n < 5:
            raise ValueError(f"the U-Net needs num_downs >= 5 (as the reference), got {n}")
        h, w = x.shape[1:3]
        if h % self.stride or w % self.stride:
            raise ValueError(
                f"UnetGenerator with {n} downsamplings needs H and W divisible by "
                f"{self.stride}, got {h}x{w}"
            )
        width = [self.ngf * min(2**i, 8) for i in range(n)]  # Filters of level i's down conv.
        skips = []
        y = x.astype(self.dtype)
        for i in range(n):
            inject = i == 0 if self.where_add == "input" else True
            y_in = with_z(y) if inject else y
            y = UnetDown(
                width[i],
                activation=i > 0,
                normalise=0 < i < n - 1,  # Neither the outermost nor the innermost.
                norm=self.norm,
                dtype=self.dtype,
                name=f"down_{i}",
            )(y_in, train)
            skips.append(y)
        for i in reversed(range(1, n)):
            y = UnetUp(
                width[i - 1],
                dropout=self.dropout and 4 <= i <= n - 2,  # The 8-ngf levels in between.
                norm=self.norm,
                upsample=self.upsample,
                dtype=self.dtype,
                name=f"up_{i}",
            )(y, train)
            y = jnp.concatenate([skips[i - 1], y], axis=-1)
        y = UnetUp(
            self.out_channels,
            outermost=True,
            upsample=self.upsample,
            dtype=self.dtype,
            name="up_0",
        )(y, train)
        return jnp.tanh(y.astype(jnp.float32))


WHERE_ADD = ("input", "all")  # Where a U-Net with nz > 0 takes its latent code.


def _latent_injector(nz: int, where_add: str, x: jax.Array, z: jax.Array | None):
    """A function concatenating z (N, nz), broadcast over H x W, to a feature map; the
    identity when nz = 0. Checks `where_add` and z's shape against the image x."""
    if nz == 0:
        if z is not None:
            raise ValueError("this U-Net has nz = 0 and takes no latent code z")
        return lambda y: y
    layers.check_choice("config.model.generator.where_add", where_add, WHERE_ADD)
    if z is None or z.shape != (x.shape[0], nz):
        got = None if z is None else z.shape
        raise ValueError(f"this U-Net needs a latent code z of shape {(x.shape[0], nz)}, got {got}")

    def concat(y: jax.Array) -> jax.Array:
        zmap = jnp.broadcast_to(z[:, None, None, :].astype(y.dtype), (*y.shape[:3], nz))
        return jnp.concatenate([y, zmap], axis=-1)

    return concat


GENERATORS = {
    "resnet": ResnetGenerator,
    "resnet_6blocks": functools.partial(ResnetGenerator, n_blocks=6),
    "resnet_9blocks": functools.partial(ResnetGenerator, n_blocks=9),
    "unet": UnetGenerator,
    "unet_128": functools.partial(UnetGenerator, num_downs=7),
    "unet_256": functools.partial(UnetGenerator, num_downs=8),
}
UNETS = ("unet", "unet_128", "unet_256")


def make_generator(cfg: Any, dtype: Any = jnp.float32) -> nn.Module:
    """Builds the generator named by `config.model.generator` (a ConfigDict or mapping)."""
    name = cfg["name"]
    if name not in GENERATORS:
        raise ValueError(
            f"unknown config.model.generator.name {name!r}; valid: {', '.join(GENERATORS)}"
        )
    if name in UNETS:
        return _make_unet(cfg, name, dtype)
    kwargs = dict(
        ngf=cfg["ngf"],
        norm=cfg["norm"],
        upsample=cfg["upsample"],
        padding=cfg["padding"],
        dropout=cfg.get("dropout", False),
        dtype=dtype,
    )
    kwargs["scan_blocks"] = cfg.get("scan_blocks", False)  # Every ResNet name.
    if name == "resnet":
        kwargs["n_blocks"] = cfg["n_blocks"]
    for key, choices in (
        ("norm", layers.NORMS),
        ("upsample", layers.UPSAMPLES),
        ("padding", layers.PADDINGS),
    ):
        layers.check_choice(f"config.model.generator.{key}", kwargs[key], choices)
    return GENERATORS[name](**kwargs)


def _make_unet(cfg: Any, name: str, dtype: Any) -> nn.Module:
    """A U-Net from `config.model.generator` (ngf, norm, dropout, upsample; num_downs for
    "unet")."""
    layers.check_choice("config.model.generator.norm", cfg["norm"], layers.NORMS)
    upsample = cfg.get("upsample", "transpose")
    layers.check_choice("config.model.generator.upsample", upsample, layers.UPSAMPLES)
    kwargs = dict(
        ngf=cfg["ngf"],
        norm=cfg["norm"],
        dropout=cfg.get("dropout", True),
        upsample=upsample,
        dtype=dtype,
    )
    nz = cfg.get("nz", 0)
    if nz:  # BicycleGAN's latent code (absent from pix2pix configs: no z).
        if not isinstance(nz, int) or nz < 0:
            raise ValueError(f"config.model.generator.nz must be an integer >= 0, got {nz!r}")
        where = cfg.get("where_add", "input")
        layers.check_choice("config.model.generator.where_add", where, WHERE_ADD)
        kwargs.update(nz=nz, where_add=where)
    if name == "unet":
        num_downs = cfg.get("num_downs")
        if not isinstance(num_downs, int) or num_downs < 5:
            raise ValueError(
                f"config.model.generator.num_downs must be an integer >= 5, got {num_downs!r}"
            )
        kwargs["num_downs"] = num_downs
    return GENERATORS[name](**kwargs)
