"""CycleGAN+NST (thesis section 3.2.3): the one change, VGG19 losses instead of identity.

The pixel identity loss L1(G_A(b), b) is replaced, for each direction, by a content loss
between the input and its translation (VGG19 conv3_2, mean squared error, weight 5) and a
style loss between the translation and a random image of the target domain (L1 on the
conv1_1..conv5_1 activations, weight 0.05, as the thesis's code; `--config.loss.vgg.style_form
=gram` for Gram matrices, as its text). All else is configs/cyclegan.py. Needs converted
VGG19 weights (README, "VGG19 weights").

  python train.py --config=configs/cyclegan_nst.py --workdir=runs/cyclegan_nst \
      --config.data.root=DIR
"""

import ml_collections

from configs import cyclegan


def get_config() -> ml_collections.ConfigDict:
    """Returns the reference CycleGAN with the VGG identity loss."""
    config = cyclegan.get_config()
    config.loss.identity = "vgg"  # Content + style on VGG19 features.
    return config
