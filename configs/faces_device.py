"""configs/faces.py at the reference's width, for an accelerator (the notebooks use it).

  python train.py --config=configs/faces_device.py --workdir=runs/faces \
      --config.data.root= --config.data.a=PHOTOS/ --config.data.b=PAINTINGS/

The same switches as configs/faces.py (U-Net with bilinear resize-convolution, 70x70
PatchGAN, no identity term, EMA generators, 64 px crops of 72 px loads) at the reference's
width (ngf 64, ndf 64), batch 8 per device (`jaxfaces.notebook.device_sized` multiplies it by
the device count), the reference's learning rate and a longer run. For paintings add
`--config.loss.lambda_identity=0.5`, as for configs/faces.py. Not measured here (no
accelerator was lent to this project's sessions when it was written): the CPU-sized
configs/faces.py is what docs/RESULTS.md measures.
"""

import ml_collections

from configs import faces


def get_config() -> ml_collections.ConfigDict:
    """Returns the accelerator-sized real-faces configuration."""
    config = faces.get_config()
    config.data.batch_size = 8  # Per device in the notebooks (device_sized), else global.
    config.model.generator.ngf = 64  # The reference width.
    config.model.discriminator.ndf = 64  # The reference width.
    config.optim.lr = 2e-4  # The reference's learning rate.
    config.train.num_steps = 20_000  # About 180 epochs of 885 paintings at batch 8.
    config.train.log_images_every = 1000  # Image grids in TensorBoard.
    config.train.eval_every = 2000  # Test metrics and a report page, when test folders exist.
    config.train.ckpt_every = 2000  # Checkpoints.
    return config
