"""A tiny CycleGAN for tests: 32 px, ngf 8, one residual block, 2-layer PatchGAN.

  python train.py --config=configs/test.py --workdir=/tmp/jf_test \
      --config.data.root=/path/with/trainA_trainB

Seconds per run on a CPU; it learns nothing useful, it exercises every mechanism.
"""

import ml_collections

from configs import cyclegan


def get_config() -> ml_collections.ConfigDict:
    """Returns the tiny test configuration."""
    config = cyclegan.get_config()
    config.data.load_size = 36  # Small loads ...
    config.data.size = 32  # ... and 32 px crops.
    config.data.batch_size = 2  # Two images per step (divisible by 1, 2 and 8 devices? no: 2).
    config.data.synthetic.size = 32  # Built-in data at 32 px.
    config.data.synthetic.num_train = 16  # A handful of images per domain.
    config.data.synthetic.num_test = 4  # And a few test images.
    config.model.generator.name = "resnet"  # n_blocks taken from below.
    config.model.generator.ngf = 8  # Tiny generator.
    config.model.generator.n_blocks = 1  # One residual block.
    config.model.discriminator.ndf = 8  # Tiny discriminator.
    config.model.discriminator.n_layers = 2  # Shallow PatchGAN for 32 px.
    config.loss.pool_size = 3  # A pool that fills within a few steps.
    config.train.num_steps = 6  # A few steps.
    config.train.decay_fraction = 0.5  # Decay over the second half (3 steps).
    config.train.log_every = 2  # Log often.
    config.train.log_images_every = 3  # Images often.
    config.train.eval_every = 3  # Evaluate the test split twice (steps 3 and 6).
    config.train.ckpt_every = 3  # Checkpoint often.
    config.train.keep_checkpoints = 2  # Keep two.
    return config
