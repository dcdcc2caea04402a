"""torchvision's VGG19 layout in plain PyTorch (torchvision does not import beside torch here).

`TorchVGG19().state_dict()` has torchvision's keys (`features.0.weight` ... `features.34.bias`),
so its files convert with `python -m jaxfaces.convert vgg19`. Used by the parity tests and the
style-transfer benchmark; torch-only, never imported by the package.
"""

import torch
from torch import nn

from bench import vgg_layout as vgg  # The layout without jax: a torch process imports torch only.


class TorchVGG19(nn.Module):
    """`features` of torchvision's vgg19 (configuration E); pool "max" or "avg"."""

    def __init__(self, pool: str = "max"):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for features, n in vgg.BLOCKS:
            for _ in range(n):
                layers += [nn.Conv2d(in_channels, features, 3, padding=1), nn.ReLU(inplace=False)]
                in_channels = features
            layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(vgg.IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(vgg.IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        """NCHW images in [-1, 1] -> {`conv{b}_{l}`: pre-ReLU activation (NCHW)}."""
        wanted = {vgg.torchvision_index(name): name for name in layers}
        h = ((x + 1) / 2 - self.mean) / self.std
        out = {}
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in wanted:
                out[wanted[index]] = h
            if len(out) == len(wanted):
                break
        return out

    def state_dict_torchvision(self) -> dict[str, torch.Tensor]:
        """The state_dict without the normalisation buffers (as torchvision's file)."""
        return {k: v for k, v in self.state_dict().items() if k.startswith("features.")}
