"""CycleGAN on the thesis's photo and portrait images at 64 px, unpaired, CPU-sized.

  python bench/results.py --minutes 4      # the split, a run of each method, docs/RESULTS.md
  python train.py --config=configs/cyclegan_thesis64.py --workdir=runs/results/cyclegan \
      --config.data.root=runs/results/data --config.train.num_steps=N

The same training images as pix2pix and LFT (bench/results.py's split of
../shared/data/thesis_faces: trainA/ the first 220 photos, trainB/ their portraits), read
unpaired: each step draws photos and portraits independently, so the pairing is never used.
The final evaluation scores the translations of testA/ testB/ against the true pairs
(truthAtoB/ truthBtoA/). The reference CycleGAN (LSGAN, cycle 10, identity 0.5, 50-image
pools) with the thesis's 64 px shape (72 px loads, 64 px crops, 6 residual blocks) at a CPU
width (ngf 32, ndf 32). bench/results.py sets train.num_steps from a measured step time so
every method trains for the same CPU time; docs/RESULTS.md has what it reached.
"""

import ml_collections

from configs import cyclegan


def get_config() -> ml_collections.ConfigDict:
    """Returns the 64 px CycleGAN configuration for the thesis's faces."""
    config = cyclegan.get_config()
    config.data.root = "runs/results/data"  # bench/results.py's split (a folder of links).
    config.data.load_size = 72  # Load at 72 px (the thesis) ...
    config.data.size = 64  # ... and crop 64 px faces.
    config.data.batch_size = 4  # Images per domain per step.
    config.model.generator.name = "resnet_6blocks"  # 6 residual blocks (the thesis at 64 px).
    config.model.generator.ngf = 32  # Half the reference width (CPU).
    config.model.discriminator.ndf = 32  # Half the reference width (CPU).
    config.optim.lr = 5e-4  # Faster than the reference's 2e-4 for a short run (as the demos).
    config.train.num_steps = 1000  # bench/results.py sets it from the CPU-time budget.
    config.train.decay_fraction = 0.5  # Linear decay over the second half.
    config.train.log_every = 100  # A console line every 100 steps.
    config.train.log_images_every = 1000  # Image grids in TensorBoard.
    config.train.ckpt_every = 1000  # Checkpoints.
    return config
