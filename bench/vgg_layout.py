"""VGG19's layout as plain Python (no framework), for the PyTorch side of the benchmarks.

The same facts as `jaxfaces.models.vgg` (which imports jax), so that a PyTorch benchmark
process imports PyTorch alone; tests/bench_test.py checks that the two agree.
"""

BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))  # (features, convolutions) a block.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONV_LAYERS = tuple(f"conv{b + 1}_{i + 1}" for b, (_, n) in enumerate(BLOCKS) for i in range(n))


def torchvision_index(layer: str) -> int:
    """Index of convolution `conv{b}_{l}` in torchvision's `vgg19().features`: each
    convolution is followed by its ReLU, each block by a pool (conv2_1 is `features.5`)."""
    index = 0
    for b, (_, n) in enumerate(BLOCKS):
        for i in range(n):
            if layer == f"conv{b + 1}_{i + 1}":
                return index
            index += 2
        index += 1
    raise ValueError(f"unknown VGG19 convolution {layer!r}; valid: {', '.join(CONV_LAYERS)}")
