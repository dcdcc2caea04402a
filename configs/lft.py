"""Latent Features Transfer (the thesis's section 3.1) with its settings: photo <-> portrait.

A translator per direction maps VGG19 features (content conv3_2; style conv1_1, conv2_1,
conv3_1, conv4_1, conv5_1, weighted 0.5, 1, 1.5, 3, 4) of a photo to those of its portrait
and back, trained on pairs; translation then optimises an image against the translated
features (Adam lr 2 in 0-255 units, 100 steps, from the input image). Needs converted VGG19
weights (README, "VGG19 weights") and pairs of same-named files:

  python train.py --config=configs/lft.py --workdir=runs/lft \
      --config.data.a=faces/photo --config.data.b=faces/portrait \
      --config.data.test_a=faces/test_photo --config.data.truth_a2b=faces/test_portrait
  python translate.py --ckpt=runs/lft --direction=AtoB --input=faces/test_photo \
      --output=out/ --truth=faces/test_portrait

The thesis trains 500 epochs at lr 2, then decays to 0 over 100 more: with N pairs and batch
B, num_steps = 600 N / B with the last sixth decaying (train.decay_fraction = 1/6; the defaults
below assume N = 260, B = 4: 39000 steps, the last 6500 decaying). The VGG19 features of all
pairs are computed once (in memory, or on disk under WORKDIR/feature_cache past
lft.cache_mb: about 70 MB per pair at 256 px), so a step costs only the translators. Its
training loss weights content 1e5 : style 1 (each branch is trained by one term alone,
content or style, so the ratio only scales the logged total); synthesis uses content 1 :
style 1e3 (the thesis also compared 1 : 1e5).
"""

import ml_collections
from ml_collections import config_dict

from configs import cyclegan
from configs.nst import vgg_config


def get_config() -> ml_collections.ConfigDict:
    """Returns the thesis's Latent Features Transfer configuration."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # Seeds the translators' initialisation, the data order and noise inits.
    config.method = "lft"  # Latent Features Transfer (jaxfaces/methods/lft.py).
    config.vgg = vgg_config(pool="avg")  # Frozen VGG19: features for training and synthesis.

    config.data = cyclegan.get_config().data  # The shared data section (see configs/cyclegan.py).
    config.data.paired = True  # A and B files matched by name: photo i <-> portrait i.
    config.data.load_size = 256  # Images are resized to 256 x 256 ...
    config.data.size = 256  # ... and not cropped (features are computed once per image).
    config.data.flip = False  # True: the mirrored pairs are added to the cached features.
    config.data.batch_size = 4  # Pairs per step.

    config.model = ml_collections.ConfigDict()
    config.model.translator = t = ml_collections.ConfigDict()
    t.variant = "conv"  # conv (thesis: 3x3 reflection-padded) | dense (1x1, per position).
    t.output_norm = "instance"  # After the 3rd conv: instance (thesis) | affine | none.

    config.lft = lft = ml_collections.ConfigDict()
    lft.directions = "both"  # both | AtoB | BtoA: the translators this run trains.
    lft.content_layer = "conv3_2"  # Thesis conv3_2; Gatys et al. conv4_2.
    lft.style_layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")  # Gram layers.
    lft.style_layer_weights = (0.5, 1.0, 1.5, 3.0, 4.0)  # w_l per style layer (thesis).
    lft.content_weight = 1e5  # Training: weight of the content MSE (thesis ratio 1e5 : 1).
    lft.style_weight = 1.0  # Training: weight of the Gram (style) loss.
    lft.feature_cache = "auto"  # memory | disk (memory-mapped .npy) | auto (disk past cache_mb).
    lft.cache_mb = 4096  # auto: features larger than this go to disk.
    lft.cache_dir = ""  # Disk cache folder; "" = WORKDIR/feature_cache.
    lft.feature_batch = 8  # Images per VGG19 call when computing the cached features.
    lft.synthesis = syn = ml_collections.ConfigDict()
    syn.init = "content"  # content (the input, + init_noise) | noise | mean (target domain's).
    syn.init_noise = 0.0  # Std of Gaussian noise added to the input start (0-255 units).
    syn.optimizer = "adam"  # adam (thesis) | lbfgs.
    syn.lr = 2.0  # Adam learning rate in 0-255 pixel units (thesis).
    syn.steps = 100  # Optimisation steps (thesis: 1000 steps turn grey).
    syn.content_weight = 1.0  # Content weight of the synthesis loss.
    syn.style_weight = 1e3  # Style weight (content : style 1e-3; the thesis also tried 1e-5).
    syn.tv_weight = 0.0  # Total variation weight (0-255 units); 0 = off.
    syn.lbfgs_memory = 10  # L-BFGS history length.

    config.optim = optim = ml_collections.ConfigDict()
    optim.lr = 2.0  # Adam learning rate of the translators (thesis).
    optim.b1 = 0.9  # Adam beta1.
    optim.b2 = 0.999  # Adam beta2.

    config.train = train = ml_collections.ConfigDict()
    train.num_steps = 39000  # 600 epochs of 260 pairs at batch 4.
    train.decay_fraction = 1 / 6  # Linear decay to 0 over the last 100 of 600 epochs (6500).
    train.decay_steps = config_dict.placeholder(int)  # Set: that many last steps decay instead.
    train.log_every = 100  # A console line every this many steps.
    train.log_images_every = 5000  # Source | synthesis | truth grids (each a synthesis).
    train.eval_every = 0  # Test metrics + report (WORKDIR/eval) every this many steps; 0: off.
    train.ckpt_every = 5000  # Save a checkpoint every this many steps (and at the end).
    train.keep_checkpoints = 2  # Checkpoints kept (the newest).
    return config
