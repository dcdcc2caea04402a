"""UNIT on the thesis's photo and portrait images at 64 px, unpaired, CPU-sized.

  python bench/results.py --minutes 4 --methods unit   # the split, a run, its table row
  python train.py --config=configs/unit_thesis64.py --workdir=runs/results/unit \
      --config.data.root=runs/results/data --config.train.num_steps=N

The same training images as pix2pix, LFT and CycleGAN (bench/results.py's split of
../shared/data/thesis_faces: trainA/ the first 220 photos, trainB/ their portraits), read
unpaired. The authors' UNIT (configs/unit.py: 4 residual blocks a side, the last encoder
block and the first decoder block shared, 3-scale LSGAN discriminators, their loss weights)
at the thesis's 64 px shape (72 px loads, 64 px crops) and a CPU width (dim 32, ndf 32, as
configs/cyclegan_thesis64.py's ngf / ndf), with the demo's short-run optimiser (see
configs/unit_demo.py). bench/results.py sets train.num_steps from a measured step time so
every method trains for the same time; docs/RESULTS.md has what it reached.
"""

import ml_collections

from configs import unit_demo


def get_config() -> ml_collections.ConfigDict:
    """Returns the 64 px UNIT configuration for the thesis's faces."""
    config = unit_demo.get_config()
    config.data.root = "runs/results/data"  # bench/results.py's split (a folder of links).
    config.data.synthetic.enabled = False  # Real faces: nothing to generate.
    config.data.load_size = 72  # Load at 72 px (the thesis) ...
    config.data.size = 64  # ... and crop 64 px faces.
    config.data.batch_size = 4  # Images per domain per step.
    config.model.generator.dim = 32  # Half the authors' width (CPU): 32, 64, 128 filters.
    config.model.discriminator.ndf = 32  # Half the authors' width (CPU).
    config.model.discriminator.n_layers = 4  # The authors' 4 stride-2 layers (64 px: 3 scales fit).
    config.train.num_steps = 1000  # bench/results.py sets it from the time budget.
    config.train.log_every = 100  # A console line every 100 steps.
    config.train.log_images_every = 1000  # Image grids in TensorBoard.
    config.train.ckpt_every = 1000  # Checkpoints.
    config.train.eval_every = 0  # Test metrics once, at the end.
    config.train.ema_decay = 0.0  # A few hundred steps: too few for a moving average.
    return config
