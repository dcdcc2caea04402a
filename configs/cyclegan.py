"""CycleGAN with the reference (junyanz/pytorch-CycleGAN-and-pix2pix) defaults.

256 px crops from 286 px loads, ResNet generator with 9 blocks, 70x70 PatchGAN,
LSGAN, cycle weight 10, identity weight 0.5, Adam 2e-4 (b1 0.5), 50-image pools,
constant learning rate for the first half of training, then linear decay to 0.

Run:
  python train.py --config=configs/cyclegan.py --workdir=runs/h2z \
      --config.data.root=/path/to/horse2zebra          # trainA/ trainB/ [testA/ testB/]
  python train.py --config=configs/cyclegan.py --workdir=runs/h2z \
      --config.data.tfds=cycle_gan/horse2zebra

The reference trains 100 + 100 epochs at batch 1 (about 1,334 images an epoch on
horse2zebra: num_steps=266800, the last half decaying) and reaches recognisable zebras.
`--config.train.num_steps=N` keeps that shape: the learning rate decays over the last
`train.decay_fraction` (0.5) of the N steps; `--config.train.decay_steps=K` sets K instead.
"""

import ml_collections
from ml_collections import config_dict

from configs.nst import vgg_config


def get_config() -> ml_collections.ConfigDict:
    """Returns the reference CycleGAN configuration."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # Seeds parameters, data order, augmentation and the image pools.
    config.method = "cyclegan"  # Name of the method module under jaxfaces/methods.

    config.data = data = ml_collections.ConfigDict()
    data.root = ""  # Folder holding trainA/ trainB/ [testA/ testB/] (PyTorch CycleGAN layout).
    data.a = ""  # Folder of domain-A training images (used instead of root).
    data.b = ""  # Folder of domain-B training images (used instead of root).
    data.test_a = ""  # Optional folder of domain-A test images (default: root/testA).
    data.test_b = ""  # Optional folder of domain-B test images (default: root/testB).
    data.truth_a2b = (
        ""  # Optional true B translations of the A test images (default: root/truthAtoB).
    )
    data.truth_b2a = (
        ""  # Optional true A translations of the B test images (default: root/truthBtoA).
    )
    data.tfds = ""  # TFDS name with trainA/trainB/testA/testB splits, e.g. cycle_gan/horse2zebra.
    data.tfds_data_dir = ""  # Optional TFDS data_dir (default: TFDS's own).
    data.load_size = 286  # Images are resized to load_size x load_size ...
    data.size = 256  # ... then randomly cropped to size x size.
    data.flip = True  # Random horizontal flips.
    data.batch_size = 1  # Global batch size (divided over all devices of all hosts).
    data.paired = False  # Match A and B files by name (supervised methods).
    data.aligned = False  # Pairs as A|B images in root/train/ [test/] (the pix2pix layout).
    data.cache_mb = 2048  # Decoded images are kept in memory up to this many MB, else re-read.
    data.synthetic = ml_collections.ConfigDict()
    data.synthetic.enabled = False  # Write the built-in procedural faces to root if missing.
    data.synthetic.size = 64  # Side of the generated images.
    data.synthetic.num_train = 400  # Training images per domain.
    data.synthetic.num_test = 50  # Test images per domain (each with its true translation).

    config.model = ml_collections.ConfigDict()
    config.model.generator = gen = ml_collections.ConfigDict()
    gen.name = "resnet_9blocks"  # resnet_6blocks | resnet_9blocks | resnet (n_blocks below).
    gen.ngf = 64  # Filters of the first convolution.
    gen.n_blocks = 9  # Residual blocks (used when name == "resnet").
    gen.norm = "instance"  # instance (no affine, as the reference) | batch | none.
    gen.upsample = "transpose"  # transpose (reference) | nearest | bilinear (resize-conv).
    gen.padding = "reflect"  # reflect (reference) | zero.
    gen.dropout = False  # Dropout 0.5 in residual blocks (the reference's --no_dropout off).
    gen.scan_blocks = False  # Residual blocks as one lax.scan: compiles ~2x faster, runs slower.
    config.model.discriminator = disc = ml_collections.ConfigDict()
    disc.name = "patchgan"  # patchgan (n_layers below; 3 gives 70x70 patches).
    disc.ndf = 64  # Filters of the first convolution.
    disc.n_layers = 3  # Stride-2 convolutions: 3 gives the 70x70 PatchGAN.
    disc.norm = "instance"  # instance | batch | none.
    disc.pack = 1  # PacGAN: images per discriminator input (1 = the plain PatchGAN).

    config.loss = loss = ml_collections.ConfigDict()
    loss.gan_mode = "lsgan"  # lsgan (least squares) | vanilla (BCE) | wgan-gp | hinge.
    loss.gp_weight = 10.0  # wgan-gp: weight of the gradient penalty.
    loss.lambda_a = 10.0  # Weight of the cycle loss A -> B -> A.
    loss.lambda_b = 10.0  # Weight of the cycle loss B -> A -> B.
    loss.lambda_identity = 0.5  # Identity loss weight, relative to lambda_a / lambda_b.
    loss.pool_size = 50  # Image history pool per direction (0 disables it).
    loss.tv_weight = 0.0  # Total variation of the translations (thesis 1e-4); 0 = off.
    loss.identity = "pixel"  # pixel (reference L1) | vgg (CycleGAN+NST: content + style).
    loss.vgg = vgg = ml_collections.ConfigDict()  # The VGG identity loss (identity = "vgg").
    vgg.content_layer = "conv3_2"  # Content: input vs its translation, mean squared error.
    vgg.style_layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")  # Style layers.
    vgg.style_layer_weights = (1.0, 1.0, 1.0, 1.0, 1.0)  # Per style layer.
    vgg.style_form = "features_l1"  # features_l1 (thesis code) | gram (thesis text).
    vgg.content_weight = 5.0  # Weight of the content term (thesis code).
    vgg.style_weight = 0.05  # Weight of the style term (thesis code).
    loss.d_noise = d_noise = ml_collections.ConfigDict()  # Noise on discriminator inputs.
    d_noise.kind = "none"  # none | uniform (w x + (1 - w) U(-1, 1)) | gaussian (x + sigma N).
    d_noise.start = 0.5  # uniform: w at step 0, rising linearly to 1 (thesis 0.5).
    d_noise.sigma = 0.1  # gaussian: sigma at step 0, falling linearly to 0.
    d_noise.anneal_steps = 0  # Steps until the noise is gone (thesis: 200 epochs).

    config.vgg = vgg_config(pool="max")  # VGG19 weights, for loss.identity = "vgg".

    config.optim = optim = ml_collections.ConfigDict()
    optim.lr = 2e-4  # Adam learning rate.
    optim.b1 = 0.5  # Adam beta1.
    optim.b2 = 0.999  # Adam beta2.

    config.train = train = ml_collections.ConfigDict()
    train.num_steps = 266_800  # Total steps (reference: 200 epochs of horse2zebra at batch 1).
    train.decay_fraction = 0.5  # The last half of the steps decay the lr linearly to 0.
    train.decay_steps = config_dict.placeholder(int)  # Set: that many last steps decay instead.
    train.ema_decay = 0.0  # > 0: translate with a moving average of G's parameters (0: reference).
    train.log_every = 100  # Console line and scalar summaries every this many steps.
    train.log_images_every = (
        1000  # Image grids (real / fake / reconstructed) every this many steps.
    )
    train.eval_every = 0  # Test metrics + report (WORKDIR/eval) every this many steps; 0: off.
    train.ckpt_every = 5000  # Save a checkpoint every this many steps (and at the end).
    train.keep_checkpoints = 3  # Checkpoints kept (the newest).
    train.dtype = "float32"  # Compute: float32 | bfloat16 (params, optimizer, losses stay fp32).
    train.profile = 0  # N > 0: trace N steps (after the first) into WORKDIR/profile.
    return config
