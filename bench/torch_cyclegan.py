"""The reference CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix) in plain PyTorch.

Used by the parity tests of `jaxfaces.convert.pytorch_cyclegan` and by `bench/train_step.py`.
The networks keep the reference's `nn.Sequential` layouts, so their `state_dict()` keys are
those of the public model zoo (`model.1.weight`, `model.10.conv_block.1.weight`,
`model.19.weight`, ...; the PatchGAN's `model.0.weight`, `model.2.weight`, ...).

Only PyTorch is needed (no torchvision). Never imported by the jaxfaces runtime.
"""

import itertools
import random

import torch
from torch import nn

NORMS = ("instance", "batch", "none")
INIT_GAIN = 0.02


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The reference's norm: InstanceNorm2d without affine or running stats, BatchNorm2d, or
    an identity ("none")."""
    if kind == "none":
        return nn.Identity()
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    raise ValueError(f"unknown norm {kind!r}; valid: {', '.join(NORMS)}")


def uses_bias(norm: str) -> bool:
    """The reference's rule: inner convolutions have a bias only with instance norm."""
    return norm == "instance"


def init_weights(net: nn.Module, gain: float = INIT_GAIN) -> nn.Module:
    """The reference's `normal` init: conv weights N(0, gain), biases 0, BN scale N(1, gain)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


class ResnetBlock(nn.Module):
    """x + conv_block(x); conv_block is pad, conv, norm, ReLU, [dropout], pad, conv, norm."""

    def __init__(self, dim: int, norm: str, use_dropout: bool):
        super().__init__()
        bias = uses_bias(norm)
        block = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=bias),
            norm_layer(norm, dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            block.append(nn.Dropout(0.5))
        block += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=bias),
            norm_layer(norm, dim),
        ]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """The reference ResNet generator (reflect padding), NCHW in [-1, 1].

    Layout of `model`: 0 pad, 1 conv7, 2 norm, 3 ReLU; 4-6 and 7-9 stride-2 conv, norm, ReLU;
    10 .. 9+n_blocks residual blocks; then two (ConvTranspose2d, norm, ReLU); pad, conv7, tanh.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        n_blocks: int = 9,
        use_dropout: bool = False,
    ):
        super().__init__()
        bias = uses_bias(norm)
        model = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            c = ngf * 2**i
            model += [
                nn.Conv2d(c, 2 * c, kernel_size=3, stride=2, padding=1, bias=bias),
                norm_layer(norm, 2 * c),
                nn.ReLU(True),
            ]
        model += [ResnetBlock(ngf * 4, norm, use_dropout) for _ in range(n_blocks)]
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            model += [
                nn.ConvTranspose2d(
                    c, c // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias
                ),
                norm_layer(norm, c // 2),
                nn.ReLU(True),
            ]
        model += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*model)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """The reference PatchGAN: 4x4 convolutions with zero padding 1, LeakyReLU 0.2.

    Layout of `model` (n_layers=3): 0 conv s2, 1 LReLU; 2-4, 5-7 conv s2, norm, LReLU;
    8-10 conv s1, norm, LReLU; 11 conv s1 to one channel.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        bias = uses_bias(norm)
        seq = [
            nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            seq += [
                nn.Conv2d(
                    ndf * prev, ndf * mult, kernel_size=4, stride=stride, padding=1, bias=bias
                ),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        seq.append(nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1))
        self.model = nn.Sequential(*seq)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ImagePool:
    """The reference image history pool (Shrivastava et al. 2017).

    Until `size` images are stored, each new fake is stored and returned; afterwards each is,
    with probability 0.5, swapped for a random stored fake (which is returned), else returned.
    """

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self._rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Pushes a batch (N, C, H, W) through the pool; returns the batch to show D."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self._rng.uniform(0, 1) > 0.5:
                idx = self._rng.randint(0, self.size - 1)
                out.append(self.images[idx].clone())
                self.images[idx] = image
            else:
                out.append(image)
        return torch.cat(out, 0)


def lsgan_loss(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Mean squared error of discriminator outputs to 1 (real) or 0 (fake)."""
    target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
    return nn.functional.mse_loss(prediction, target)


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    """Freezes (or unfreezes) every parameter of `nets`."""
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class ReferenceCycleGAN:
    """The reference CycleGAN training step (`optimize_parameters`) with LSGAN losses.

    Each `train_step(real_a, real_b)`: forward both cycles, one Adam step of both generators
    on GAN + cycle (lambda 10) + identity (0.5) losses with the discriminators frozen, then
    one Adam step of both discriminators on real images and pooled (detached) fakes.
    """

    def __init__(
        self,
        ngf: int = 64,
        n_blocks: int = 9,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        use_dropout: bool = False,
        lambda_a: float = 10.0,
        lambda_b: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        lr: float = 2e-4,
        beta1: float = 0.5,
        seed: int = 0,
        device: str = "cpu",
        amp_dtype: torch.dtype | None = None,
    ):
        torch.manual_seed(seed)
        gen = lambda: ResnetGenerator(3, 3, ngf, norm, n_blocks, use_dropout).to(device)
        disc = lambda: NLayerDiscriminator(3, ndf, n_layers, norm).to(device)
        self.g_a, self.g_b, self.d_a, self.d_b = gen(), gen(), disc(), disc()
        # Mixed precision (e.g. bfloat16 on a GPU): forward passes under autocast.
        self.autocast = lambda: torch.autocast(
            torch.device(device).type, dtype=amp_dtype, enabled=amp_dtype is not None
        )
        self.lambda_a, self.lambda_b, self.lambda_identity = lambda_a, lambda_b, lambda_identity
        self.pool_a = ImagePool(pool_size, seed)  # Fakes of A, shown to D_B.
        self.pool_b = ImagePool(pool_size, seed + 1)  # Fakes of B, shown to D_A.
        betas = (beta1, 0.999)
        self.opt_g = torch.optim.Adam(
            itertools.chain(self.g_a.parameters(), self.g_b.parameters()), lr=lr, betas=betas
        )
        self.opt_d = torch.optim.Adam(
            itertools.chain(self.d_a.parameters(), self.d_b.parameters()), lr=lr, betas=betas
        )
        for net in (self.g_a, self.g_b, self.d_a, self.d_b):
            net.train()

    def _backward_d(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        loss = 0.5 * (lsgan_loss(d(real), True) + lsgan_loss(d(fake.detach()), False))
        loss.backward()
        return loss.detach()

    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, float]:
        """One step on NCHW batches in [-1, 1]; returns the losses as floats."""
        with self.autocast():
            return self._train_step(real_a, real_b)

    def _train_step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, float]:
        fake_b = self.g_a(real_a)
        rec_a = self.g_b(fake_b)
        fake_a = self.g_b(real_b)
        rec_b = self.g_a(fake_a)

        set_requires_grad([self.d_a, self.d_b], False)
        self.opt_g.zero_grad()
        l1 = nn.functional.l1_loss
        terms = {}
        if self.lambda_identity > 0:
            idt_a, idt_b = self.g_a(real_b), self.g_b(real_a)
            terms["idt_a"] = l1(idt_a, real_b) * self.lambda_b * self.lambda_identity
            terms["idt_b"] = l1(idt_b, real_a) * self.lambda_a * self.lambda_identity
        terms["g_a"] = lsgan_loss(self.d_a(fake_b), True)
        terms["g_b"] = lsgan_loss(self.d_b(fake_a), True)
        terms["cycle_a"] = l1(rec_a, real_a) * self.lambda_a
        terms["cycle_b"] = l1(rec_b, real_b) * self.lambda_b
        sum(terms.values()).backward()
        terms = {k: v.detach() for k, v in terms.items()}
        self.opt_g.step()

        set_requires_grad([self.d_a, self.d_b], True)
        self.opt_d.zero_grad()
        terms["d_a"] = self._backward_d(self.d_a, real_b, self.pool_b.query(fake_b))
        terms["d_b"] = self._backward_d(self.d_b, real_a, self.pool_a.query(fake_a))
        self.opt_d.step()
        return {k: v.item() for k, v in terms.items()}
