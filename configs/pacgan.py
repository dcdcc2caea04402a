"""CycleGAN with a PacGAN discriminator (Lin et al. 2018): the one change, packs of m = 2.

Each discriminator input is two images on the channel axis (real with real, fake with
fake), which penalises mode collapse; only the first convolution widens (6 input channels).
Batches of 2 so a pack holds two different images; all else is configs/cyclegan.py.

  python train.py --config=configs/pacgan.py --workdir=runs/pacgan --config.data.root=DIR
"""

import ml_collections

from configs import cyclegan


def get_config() -> ml_collections.ConfigDict:
    """Returns the reference CycleGAN with PacGAN m = 2."""
    config = cyclegan.get_config()
    config.model.discriminator.pack = 2  # Two images per discriminator input.
    config.data.batch_size = 2  # A pack needs two images of the batch.
    return config
