"""pix2pix with the reference (junyanz/pytorch-CycleGAN-and-pix2pix) defaults.

U-Net 256 (ngf 64, batch norm, dropout), conditional 70x70 PatchGAN (6 input channels,
batch norm), vanilla GAN + 100 x L1 to the target, Adam 2e-4 (b1 0.5), no image pool, batch
1, 286 px loads randomly cropped to 256 px and flipped (the same crop and flip for both
images of a pair), constant learning rate for the first half, then linear decay to 0.
At test time the generator stays in training mode, as the reference's without --eval
(`model.generator.eval_mode`).

Run on pairs of same-named files (trainA/x.png <-> trainB/x.png):
  python train.py --config=configs/pix2pix.py --workdir=runs/p2p \
      --config.data.root=/path/to/pairs          # trainA/ trainB/ [testA/ testB/ truthAtoB/]
  python translate.py --ckpt=runs/p2p --direction=AtoB --input=IMAGES --output=OUT
or on the reference's aligned layout (each file A|B side by side, width = 2 x height):
  python train.py --config=configs/pix2pix.py --workdir=runs/p2p \
      --config.data.root=/path/to/facades --config.data.aligned=True   # train/ [test/]

The reference trains 100 + 100 epochs at batch 1 (facades: 400 pairs, 80,000 steps) and
reaches plausible facades from label maps; `--config.train.num_steps=N` keeps that shape.
`pix2pix.directions=both` trains a second, independent model the other way beside it.
"""

import ml_collections
from ml_collections import config_dict

from configs import cyclegan


def get_config() -> ml_collections.ConfigDict:
    """Returns the reference pix2pix configuration."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # Seeds parameters, data order, augmentation and dropout.
    config.method = "pix2pix"  # jaxfaces/methods/pix2pix.py.

    config.data = cyclegan.get_config().data  # The shared data section (see configs/cyclegan.py).
    config.data.paired = True  # A and B files matched by name: input i <-> output i.
    config.data.aligned = False  # True: root/train/ [test/] files hold A|B side by side (pairs).
    config.data.load_size = 286  # Images are resized to 286 x 286 ...
    config.data.size = 256  # ... then randomly cropped to 256 (the same crop for both).
    config.data.flip = True  # Random horizontal flips (the same flip for both).
    config.data.batch_size = 1  # Pairs per step (reference: 1).

    config.model = ml_collections.ConfigDict()
    config.model.generator = gen = ml_collections.ConfigDict()
    gen.name = "unet_256"  # unet_256 (8 downs) | unet_128 (7) | unet (num_downs) | resnet_*.
    gen.ngf = 64  # Filters of the first convolution.
    gen.num_downs = 8  # Downsamplings (used when name == "unet"); sides: multiples of 2**n.
    gen.norm = "batch"  # batch (reference) | instance | none.
    gen.dropout = True  # Dropout 0.5 in the 8-ngf decoder levels (reference: on).
    gen.eval_mode = False  # Translate in inference mode (reference: training mode, no --eval).
    gen.n_blocks = 9  # Residual blocks (resnet generators only).
    gen.upsample = "transpose"  # transpose (reference) | nearest | bilinear (resize-conv).
    gen.padding = "reflect"  # resnet generators only: reflect | zero.
    config.model.discriminator = disc = ml_collections.ConfigDict()
    disc.name = "patchgan"  # Conditional: sees (input, output) on 6 channels.
    disc.ndf = 64  # Filters of the first convolution.
    disc.n_layers = 3  # Stride-2 convolutions: 3 gives the 70x70 PatchGAN.
    disc.norm = "batch"  # batch (reference) | instance | none.

    config.pix2pix = p2p = ml_collections.ConfigDict()
    p2p.directions = "both"  # both | AtoB | BtoA: independent models this run trains.

    config.loss = loss = ml_collections.ConfigDict()
    loss.gan_mode = "vanilla"  # vanilla (reference, BCE) | lsgan | wgan-gp | hinge.
    loss.gp_weight = 10.0  # wgan-gp: weight of the gradient penalty.
    loss.lambda_l1 = 100.0  # Weight of the L1 distance of G(x) to the target.

    config.optim = optim = ml_collections.ConfigDict()
    optim.lr = 2e-4  # Adam learning rate.
    optim.b1 = 0.5  # Adam beta1.
    optim.b2 = 0.999  # Adam beta2.

    config.train = train = ml_collections.ConfigDict()
    train.num_steps = 80_000  # Total steps (reference: 200 epochs of facades at batch 1).
    train.decay_fraction = 0.5  # The last half of the steps decay the lr linearly to 0.
    train.decay_steps = config_dict.placeholder(int)  # Set: that many last steps decay instead.
    train.log_every = 100  # Console line and scalar summaries every this many steps.
    train.log_images_every = 1000  # Image grids (input | translation | truth).
    train.eval_every = 0  # Test metrics + report (WORKDIR/eval) every this many steps; 0: off.
    train.ckpt_every = 5000  # Save a checkpoint every this many steps (and at the end).
    train.keep_checkpoints = 3  # Checkpoints kept (the newest).
    train.dtype = "float32"  # Compute: float32 | bfloat16 (params, optimizer, losses stay fp32).
    train.profile = 0  # N > 0: trace N steps (after the first) into WORKDIR/profile.
    return config
