"""The reference pix2pix U-Net (junyanz/pytorch-CycleGAN-and-pix2pix) in plain PyTorch.

Used by the parity tests of `jaxfaces.convert.pytorch_pix2pix` and `tests/pix2pix_test.py`.
The network keeps the reference's recursive `UnetSkipConnectionBlock` layout, so its
`state_dict()` keys are those of the public pix2pix model zoo (`model.model.0.weight`,
`model.model.1.model.1.weight`, ..., `model.model.3.bias`). The conditional PatchGAN is
`torch_cyclegan.NLayerDiscriminator` with 6 input channels.

Only PyTorch is needed. Never imported by the jaxfaces runtime.
"""

import torch
from torch import nn

from bench.torch_cyclegan import init_weights, norm_layer, uses_bias


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: x -> [x, up(sub(down(x)))] (the outermost returns up(...) alone).

    Layout of `model`: outermost 0 down conv, 1 submodule, 2 ReLU, 3 up conv, 4 tanh;
    innermost 0 LeakyReLU, 1 down conv, 2 ReLU, 3 up conv, 4 norm; otherwise 0 LeakyReLU,
    1 down conv, 2 norm, 3 submodule, 4 ReLU, 5 up conv, 6 norm, [7 dropout 0.5].
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        bias = uses_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(
                inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias
            )
            model = [downrelu, downconv, uprelu, upconv, norm_layer(norm, outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(
                inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias
            )
            model = [downrelu, downconv, norm_layer(norm, inner_nc), submodule]
            model += [uprelu, upconv, norm_layer(norm, outer_nc)]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """The reference U-Net: `num_downs` levels built from the innermost out, NCHW in [-1, 1]."""

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = False,
    ):
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout
            )
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
