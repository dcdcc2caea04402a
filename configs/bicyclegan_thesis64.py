"""BicycleGAN on the thesis's photo -> portrait pairs at 64 px (the thesis's size), CPU-sized.

  python bench/results.py --minutes 2.5 --methods bicyclegan   # the split, a run, its row
  python train.py --config=configs/bicyclegan_thesis64.py --workdir=runs/results/bicyclegan \
      --config.data.root=runs/results/data --config.train.num_steps=N

data.root is a folder in the paired layout (trainA/ photos, trainB/ their portraits, same
names; testA/ testB/ truthAtoB/ truthBtoA/ for the final evaluation), as bench/results.py
builds from ../shared/data/thesis_faces (the first 220 pairs by file name train, the last
40 test). The authors' networks at pix2pix_thesis64.py's CPU width: a U-Net of 6
downsamplings (64 px down to 1 x 1, ngf 32, instance norm, dropout, z of 8 at every level),
the ResNet encoder with 4 blocks (64 px down to 4 x 4, nef 32) and two 2-scale 70x70
PatchGANs (ndf 32); 72 px loads, random 64 px crops and flips (the same for both images of
a pair); a model each way. bench/results.py sets train.num_steps from a measured step time so
every method trains for the same CPU time; docs/RESULTS.md has what it reached.
"""

import ml_collections

from configs import bicyclegan


def get_config() -> ml_collections.ConfigDict:
    """Returns the 64 px BicycleGAN configuration for the thesis's faces."""
    config = bicyclegan.get_config()
    config.data.root = "runs/results/data"  # bench/results.py's split (a folder of links).
    config.data.load_size = 72  # 64 px x 286 / 256: the authors' jitter at 64 px ...
    config.data.size = 64  # ... random 64 px crops (the thesis's size).
    config.data.batch_size = 4  # Pairs per step: 2 encoded, 2 with random z.
    config.model.generator.name = "unet"  # num_downs below.
    config.model.generator.num_downs = 6  # 64 px down to 1 x 1.
    config.model.generator.ngf = 32  # Half the authors' width (CPU).
    config.model.encoder.n_blocks = 4  # The authors' resnet_128 depth: 64 px -> 4 x 4.
    config.model.encoder.nef = 32  # Half the authors' width (CPU).
    config.model.discriminator.ndf = 32  # Half the authors' width (CPU).
    config.bicyclegan.directions = "both"  # Both ways, as the results table scores.
    config.optim.lr = 5e-4  # Faster than the authors' 2e-4 for a short run (as the demos).
    config.train.num_steps = 1000  # bench/results.py sets it from the CPU-time budget.
    config.train.decay_fraction = 0.5  # Linear decay over the second half.
    config.train.log_every = 100  # A console line every 100 steps.
    config.train.log_images_every = 1000  # Image grids in TensorBoard.
    config.train.ckpt_every = 1000  # Checkpoints.
    return config
