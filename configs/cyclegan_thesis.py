"""The thesis's full CycleGAN for faces (its sections 3.2.3, 3.2.4 and 4.2.2).

On top of the reference CycleGAN (configs/cyclegan.py): 64 px faces, 6 residual blocks,
resize-convolution upsampling (nearest x2 then a 3x3 convolution) and reflection padding,
PacGAN with packs of m = 2 (so batches of 2), uniform noise on the discriminators' inputs
annealed from w = 0.5 to 1 over the whole run, total variation 1e-4, LSGAN, 50-image pools,
and the VGG19 content + style loss in place of the pixel identity loss (content conv3_2,
weight 5; style: L1 on conv1_1..conv5_1 activations, weight 0.05, as the thesis's code).
Adam 2e-4 (b1 0.5), 100 epochs constant then 100 of linear decay.

Needs converted VGG19 weights (README, "VGG19 weights"). On the thesis's own data:

  python train.py --config=configs/cyclegan_thesis.py --workdir=runs/thesis \
      --config.data.a=../shared/data/thesis_faces/photo \
      --config.data.b=../shared/data/thesis_faces/painting

An epoch is max(photos, paintings) = 885 images, 443 steps of 2; 200 epochs = 88,600 steps.
The thesis reports photo <-> painting translations that keep identity and pose better than
the reference CycleGAN's, with fewer checkerboard artefacts.
"""

import ml_collections

from configs import cyclegan


def get_config() -> ml_collections.ConfigDict:
    """Returns the thesis's CycleGAN configuration."""
    config = cyclegan.get_config()
    config.data.load_size = 72  # Load at 72 px ...
    config.data.size = 64  # ... and crop 64 px faces.
    config.data.batch_size = 2  # PacGAN packs two images.
    config.model.generator.name = "resnet_6blocks"  # 6 residual blocks (64 px input).
    config.model.generator.upsample = "nearest"  # Resize-convolution against checkerboards.
    config.model.generator.padding = "reflect"  # Reflection padding.
    config.model.discriminator.pack = 2  # PacGAN, m = 2.
    config.loss.d_noise.kind = "uniform"  # w x + (1 - w) U(-1, 1) on D's inputs ...
    config.loss.d_noise.start = 0.5  # ... from w = 0.5 ...
    config.loss.d_noise.anneal_steps = 88_600  # ... to 1 over the whole run (200 epochs).
    config.loss.tv_weight = 1e-4  # Total variation of the translations.
    config.loss.identity = "vgg"  # VGG content + style instead of the pixel identity loss.
    config.train.num_steps = 88_600  # 200 epochs of 443 steps.
    config.train.decay_fraction = 0.5  # The last 100 epochs decay linearly to 0.
    return config
