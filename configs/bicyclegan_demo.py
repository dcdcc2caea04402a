"""BicycleGAN on the built-in procedural faces at 32 px, on the CPU (both directions).

  python train.py --config=configs/bicyclegan_demo.py --workdir=runs/bicyclegan_demo
  python translate.py --ckpt=runs/bicyclegan_demo --direction=AtoB \
      --input=data/faces_paired/testA --output=runs/bicyclegan_demo/samples5 --samples=5

Writes the built-in data with training pairs (trainB/ = the paintings of the trainA scenes)
to data/faces_paired, trains G (U-Net, 5 downs, ngf 16, z of 8 at every level), E (ResNet,
3 blocks) and two 2-scale PatchGANs each way, then writes test sheets (z = 0) and prints
the L1 to the true translations against the identity baseline. Another data set in the same
layout: `--config.data.root=DIR --config.data.synthetic.enabled=False`; folders:
`--config.data.root= --config.data.a=... --config.data.b=... --config.data.test_a=...
--config.data.test_b=...` (plus data.truth_a2b / truth_b2a); images of another size are
resized to 32 px. Measured (800 steps, 233 CPU seconds on 2 shared cores): L1 to the true
translations with z = E(truth) 0.40x (AtoB) / 0.35x (BtoA) the identity baseline's, 0.47x /
0.39x with z = 0; diversity of 5 samples 0.043 / 0.044 (docs/ABLATION.md, BicycleGAN).
"""

import ml_collections

from configs import bicyclegan, demo


def get_config() -> ml_collections.ConfigDict:
    """Returns the CPU-sized BicycleGAN configuration."""
    config = bicyclegan.get_config()
    demo.use_builtin_faces(config, "data/faces_paired")  # 8 pairs a step: 4 encoded, 4 random z.
    config.data.aligned = False  # True: root/train/ [test/] hold A|B images (not built in).
    config.model.generator.name = "unet"  # num_downs below.
    config.model.generator.num_downs = 5  # 32 px down to 1 x 1.
    config.model.generator.ngf = 16  # A quarter of the authors' width.
    config.model.generator.dropout = False  # Too few levels for the 8-ngf dropout ones.
    config.model.encoder.n_blocks = 3  # 32 px down to 4 x 4, then averaged.
    config.model.encoder.nef = 16  # A quarter of the authors' width.
    config.model.discriminator.ndf = 16  # A quarter of the authors' width.
    config.model.discriminator.n_layers = 2  # 34x34 patches: the whole 32 px image.
    config.bicyclegan.directions = "both"  # Two models, so translate.py works both ways.
    config.optim.lr = 5e-4  # Faster than the authors' 2e-4 for a short run (as the demos).
    config.train.num_steps = 800  # 16 epochs of 400 pairs.
    config.train.decay_fraction = 0.5  # Linear decay over the second half (400 steps).
    config.train.log_every = 100  # A console line every 100 steps.
    config.train.log_images_every = 400  # Image grids in TensorBoard.
    config.train.eval_every = 400  # Test metrics and a report page twice.
    config.train.ckpt_every = 400  # Checkpoints.
    return config
