"""Latent Features Transfer on the thesis's photo -> portrait pairs at 64 px, CPU-sized.

  python bench/results.py --minutes 4      # the split, a run of each method, docs/RESULTS.md
  python train.py --config=configs/lft_thesis64.py --workdir=runs/results/lft \
      --config.data.root=runs/results/data --config.train.num_steps=N

data.root as configs/pix2pix_thesis64.py (bench/results.py's split of
../shared/data/thesis_faces: 220 training pairs, 40 test pairs with their truths). The
thesis's translators and synthesis (100 Adam steps at lr 2 from the input) on 64 px images,
with configs/lft_demo.py's two departures (no instance norm on the translators' output, Adam
lr 1e-3; docs/LFT.md), trained photo -> portrait only: each test translation is a 100-step
synthesis through VGG19, minutes per direction on a CPU, so the other way and the round trip
are left out (`--config.lft.directions=both` trains both). Needs converted VGG19 weights
(README, "VGG19 weights"); `--config.vgg.weights=random` runs without them (bench/results.py
then labels the row "LFT (random VGG19)": features that know nothing of faces).
"""

import ml_collections

from configs import lft


def get_config() -> ml_collections.ConfigDict:
    """Returns the 64 px Latent Features Transfer configuration for the thesis's faces."""
    config = lft.get_config()
    config.data.root = "runs/results/data"  # bench/results.py's split (a folder of links).
    config.data.load_size = 64  # Resized to 64 px (the thesis's size) ...
    config.data.size = 64  # ... and not cropped (features are computed once per image).
    config.data.batch_size = 4  # Pairs per step (the thesis).
    config.lft.directions = "AtoB"  # Photo -> portrait only (see the docstring).
    config.model.translator.output_norm = "none"  # Free output scale (configs/lft_demo.py).
    config.optim.lr = 1e-3  # Adam for an unnormalised last layer (configs/lft_demo.py).
    config.train.num_steps = 1000  # bench/results.py sets it from the CPU-time budget.
    config.train.decay_fraction = 1 / 3  # Linear decay over the last third.
    config.train.log_every = 100  # A console line every 100 steps.
    config.train.log_images_every = 1000  # Synthesis grids in TensorBoard (each a synthesis).
    config.train.ckpt_every = 1000  # Checkpoints.
    return config
