"""pix2pix on the thesis's photo -> portrait pairs at 64 px (the thesis's size), CPU-sized.

  python bench/results.py --minutes 4      # the split, a run of each method, docs/RESULTS.md
  python train.py --config=configs/pix2pix_thesis64.py --workdir=runs/results/pix2pix \
      --config.data.root=runs/results/data --config.train.num_steps=N

data.root is a folder in the paired layout (trainA/ photos, trainB/ their portraits, same
names; testA/ testB/ truthAtoB/ truthBtoA/ for the final evaluation), as bench/results.py
builds from ../shared/data/thesis_faces (the first 220 pairs by file name train, the last
40 test). The reference's networks at a CPU width: a U-Net of 6 downsamplings (64 px down
to 1 x 1, ngf 32, batch norm, dropout) and the conditional 70x70 PatchGAN (ndf 32); the
reference's jitter at this size (72 px loads, random 64 px crops and flips, the same for both
images of a pair). bench/results.py sets train.num_steps from a measured step time so every
method trains for the same CPU time; docs/RESULTS.md has what it reached.
"""

import ml_collections

from configs import pix2pix


def get_config() -> ml_collections.ConfigDict:
    """Returns the 64 px pix2pix configuration for the thesis's faces."""
    config = pix2pix.get_config()
    config.data.root = "runs/results/data"  # bench/results.py's split (a folder of links).
    config.data.load_size = 72  # 64 px x 286 / 256: the reference's jitter at 64 px ...
    config.data.size = 64  # ... random 64 px crops (the thesis's size).
    config.data.batch_size = 4  # Pairs per step.
    config.model.generator.name = "unet"  # num_downs below.
    config.model.generator.num_downs = 6  # 64 px down to 1 x 1.
    config.model.generator.ngf = 32  # Half the reference width (CPU).
    config.model.discriminator.ndf = 32  # Half the reference width (CPU).
    config.optim.lr = 5e-4  # Faster than the reference's 2e-4 for a short run (as the demos).
    config.train.num_steps = 1000  # bench/results.py sets it from the CPU-time budget.
    config.train.decay_fraction = 0.5  # Linear decay over the second half.
    config.train.log_every = 100  # A console line every 100 steps.
    config.train.log_images_every = 1000  # Image grids in TensorBoard.
    config.train.ckpt_every = 1000  # Checkpoints.
    return config
