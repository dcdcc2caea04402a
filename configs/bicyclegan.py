"""BicycleGAN with the authors' (junyanz/BicycleGAN) defaults; each comment names its source.

Sources: options/base_options.py (B), options/train_options.py (T), models/networks.py (N),
models/bicycle_gan_model.py (M), scripts/train_*.sh (S), all in junyanz/BicycleGAN.

U-Net 256 with an 8-dimensional z added at every level, a ResNet encoder E (resnet_256),
two 2-scale 70x70 PatchGANs (D for G(A, E(B)), D2 for G(A, z ~ N(0, I))), instance norm,
LSGAN, lambda_L1 10, lambda_latent 0.5, lambda_KL 0.01, Adam 2e-4 (b1 0.5), batch 2 (one
pair for each half), 286 px loads cropped to 256 and flipped, 100 + 100 epochs.

Run on pairs of same-named files (trainA/x.png <-> trainB/x.png):
  python train.py --config=configs/bicyclegan.py --workdir=runs/bicycle \
      --config.data.root=/path/to/pairs          # trainA/ trainB/ [testA/ testB/ truthAtoB/]
  python translate.py --ckpt=runs/bicycle --direction=AtoB --input=IMAGES --output=OUT \
      --samples=5                                 # five outputs per input, z ~ N(0, I)
or on the authors' aligned layout (A|B side by side): add --config.data.aligned=True.

The authors train facades (400 pairs) 200 + 200 epochs and edges2shoes 30 + 30; 100 + 100
at batch 2 on 400 pairs is the 40,000 steps below. Translations differ with z while the
L1 to the truth with z = E(truth) stays close to pix2pix's.
"""

import ml_collections
from ml_collections import config_dict

from configs import cyclegan


def get_config() -> ml_collections.ConfigDict:
    """Returns the authors' BicycleGAN configuration."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # Seeds parameters, data order, augmentation, z and eps draws.
    config.method = "bicyclegan"  # jaxfaces/methods/bicyclegan.py.

    config.data = cyclegan.get_config().data  # The shared data section (see configs/cyclegan.py).
    config.data.paired = True  # A and B files matched by name (B: dataset_mode aligned).
    config.data.aligned = False  # True: root/train/ [test/] files hold A|B side by side (B).
    config.data.load_size = 286  # B: --load_size 286 ...
    config.data.size = 256  # ... B: --crop_size 256 (the same crop for both images).
    config.data.flip = True  # B: flips unless --no_flip (the same flip for both).
    config.data.batch_size = 2  # B: --batch_size 2; M: half encoded, half random z.

    config.model = ml_collections.ConfigDict()
    config.model.generator = gen = ml_collections.ConfigDict()
    gen.name = "unet_256"  # B: --netG unet_256 | unet_128 | unet (num_downs).
    gen.ngf = 64  # B: --ngf 64.
    gen.num_downs = 8  # Downsamplings (used when name == "unet"); sides: multiples of 2**n.
    gen.norm = "instance"  # B: --norm instance (none also works; batch is refused).
    gen.dropout = True  # S: every train script passes --use_dropout (B's default is off).
    gen.nz = 8  # B: --nz 8: the size of z.
    gen.where_add = "all"  # B: --where_add all (z at every level's way down) | input.
    config.model.encoder = enc = ml_collections.ConfigDict()
    enc.name = "resnet"  # B: --netE resnet_256 (N: E_ResNet) ...
    enc.n_blocks = 5  # ... N: resnet_256 has 5 blocks (resnet_128: 4); sides: x 2**n_blocks.
    enc.nef = 64  # B: --nef 64.
    enc.norm = "instance"  # B: --norm instance.
    config.model.discriminator = disc = ml_collections.ConfigDict()
    disc.name = "patchgan"  # B: --netD / --netD2 basic_256_multi (N: D_NLayersMulti).
    disc.ndf = 64  # B: --ndf 64 (the second scale: 32).
    disc.n_layers = 3  # N: basic_256_multi has 3 layers (70x70 patches).
    disc.num_d = 2  # B: --num_Ds 2: scales per discriminator.
    disc.norm = "instance"  # B: --norm instance.
    disc.conditional = False  # B: --conditional_D off: D sees the output only.

    config.bicyclegan = bc = ml_collections.ConfigDict()
    bc.directions = "AtoB"  # B: --direction AtoB; both | BtoA: independent models.

    config.loss = loss = ml_collections.ConfigDict()
    loss.gan_mode = "lsgan"  # T: --gan_mode lsgan | vanilla | hinge.
    loss.lambda_gan = 1.0  # T: --lambda_GAN 1: D's verdict on G(A, E(B)).
    loss.lambda_gan2 = 1.0  # T: --lambda_GAN2 1: D2's verdict on G(A, z ~ N(0, I)).
    loss.lambda_l1 = 10.0  # T: --lambda_L1 10: |B - G(A, E(B))|.
    loss.lambda_z = 0.5  # T: --lambda_z 0.5: |E(G(A, z)) - z| (G only).
    loss.lambda_kl = 0.01  # T: --lambda_kl 0.01: KL(E(B) || N(0, I)), summed.

    config.optim = optim = ml_collections.ConfigDict()
    optim.lr = 2e-4  # T: --lr 0.0002 (G, E, D, D2 alike).
    optim.b1 = 0.5  # T: --beta1 0.5.
    optim.b2 = 0.999  # M: Adam betas (beta1, 0.999).

    config.train = train = ml_collections.ConfigDict()
    train.num_steps = 40_000  # T: --niter 100 + --niter_decay 100 epochs of 400 pairs / 2.
    train.decay_fraction = 0.5  # T: --lr_policy linear: the last --niter_decay epochs decay.
    train.decay_steps = config_dict.placeholder(int)  # Set: that many last steps decay instead.
    train.log_every = 100  # T: --print_freq 100 (console line and scalars).
    train.log_images_every = 1000  # Image grids (input | E(truth) | two z | truth).
    train.eval_every = 0  # Test metrics + report (WORKDIR/eval) every this many steps; 0: off.
    train.ckpt_every = 5000  # Save a checkpoint every this many steps (and at the end).
    train.keep_checkpoints = 3  # Checkpoints kept (the newest).
    train.dtype = "float32"  # Compute: float32 | bfloat16 (params, optimizer, losses stay fp32).
    train.profile = 0  # N > 0: trace N steps (after the first) into WORKDIR/profile.
    return config
