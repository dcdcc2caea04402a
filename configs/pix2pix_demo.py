"""pix2pix on the built-in procedural faces at 32 px, on the CPU (both directions).

  python train.py --config=configs/pix2pix_demo.py --workdir=runs/pix2pix_demo

Writes the built-in data with training pairs (trainB/ = the paintings of the trainA scenes)
to data/faces_paired, trains a U-Net (5 downs, ngf 16) and a conditional PatchGAN each way,
then writes test sheets to runs/pix2pix_demo/samples and prints the L1 to the true
translations against the identity baseline (input vs truth). Another data set in the same
layout: `--config.data.root=DIR --config.data.synthetic.enabled=False`; folders:
`--config.data.root= --config.data.a=... --config.data.b=... --config.data.test_a=...
--config.data.test_b=...` (plus data.truth_a2b / truth_b2a); images of another size are
resized to 32 px. Measured (800 steps, about a minute on 2 shared cores): L1 to the true
translations 0.34x the identity baseline's both ways (AtoB 0.339x, BtoA 0.337x).
"""

import ml_collections

from configs import demo, pix2pix


def get_config() -> ml_collections.ConfigDict:
    """Returns the CPU-sized pix2pix configuration."""
    config = pix2pix.get_config()
    demo.use_builtin_faces(config, "data/faces_paired")
    config.data.aligned = False  # True: root/train/ [test/] hold A|B images (not built in).
    config.model.generator.name = "unet"  # num_downs below.
    config.model.generator.num_downs = 5  # 32 px down to 1 x 1.
    config.model.generator.ngf = 16  # A quarter of the reference width.
    config.model.discriminator.ndf = 16  # A quarter of the reference width.
    config.model.discriminator.n_layers = 2  # 34x34 patches: the whole 32 px image.
    config.optim.lr = 5e-4  # Faster than the reference's 2e-4 for a short run.
    config.train.num_steps = 800  # 16 epochs of 400 pairs.
    config.train.decay_fraction = 0.5  # Linear decay over the second half (400 steps).
    config.train.log_every = 100  # A console line every 100 steps.
    config.train.log_images_every = 400  # Image grids in TensorBoard.
    config.train.eval_every = 400  # Test metrics and a report page twice.
    config.train.ckpt_every = 400  # Checkpoints.
    return config
