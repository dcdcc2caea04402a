"""Latent Features Transfer on the built-in procedural faces at 32 px, on the CPU.

  python train.py --config=configs/lft_demo.py --workdir=runs/lft_demo

Writes the built-in data with training pairs (trainB/ = the paintings of the trainA scenes)
to data/faces_paired, trains both translators on the cached VGG19 features of the 400
pairs, then translates the test images by synthesis (runs/lft_demo/samples: metrics against
the true translations, with the identity baseline). Needs converted VGG19 weights (README,
"VGG19 weights"); `--config.vgg.weights=random` runs the mechanics without them, but
then the translations are judged in a feature space that knows nothing of faces. Against
the thesis's settings: the translators' last convolution is not instance-normalised
(output_norm=none) and Adam's lr is 1e-3 (docs/LFT.md: with random VGG19 weights this
reached 0.70x / 0.75x the identity baseline's L1 after 150 steps, while the thesis's
normalised output did worse than identity). About 3 s a step on 2 shared CPU cores.
"""

import ml_collections

from configs import lft


def get_config() -> ml_collections.ConfigDict:
    """Returns the CPU-sized Latent Features Transfer configuration."""
    config = lft.get_config()
    config.data.root = "data/faces_paired"  # Where the built-in data is written (once).
    config.data.synthetic.enabled = True  # Generate it there if missing ...
    config.data.synthetic.size = 32  # ... at 32 px,
    config.data.synthetic.num_train = 400  # with 400 training pairs
    config.data.synthetic.num_test = 50  # and 50 test images per domain (with truths).
    config.data.load_size = 32  # No resize ...
    config.data.size = 32  # ... and no crop.
    config.data.batch_size = 8  # Pairs per step.
    config.model.translator.output_norm = "none"  # Free output scale (see the docstring).
    config.optim.lr = 1e-3  # Adam for an unnormalised last layer.
    config.train.num_steps = 300  # 6 epochs of 400 pairs.
    config.train.decay_fraction = 1 / 3  # Then linear decay over the last 100 steps.
    config.train.log_every = 25  # A console line every 25 steps.
    config.train.log_images_every = 150  # Synthesis grids in TensorBoard.
    config.train.ckpt_every = 100  # Checkpoints.
    return config
