"""Neural style transfer (Gatys et al.) with the thesis's settings.

Content layer conv3_2, style Gram matrices of conv1_1 .. conv5_1 weighted 0.5, 1, 1.5, 3, 4,
average pooling, initialisation from the content image, Adam lr 2 (0-255 pixel units) for
100 steps, at 256 px. Needs converted VGG19 weights (see README, "VGG19 weights"):

  python -m jaxfaces.convert vgg19 --pth vgg19-dcbb9e9d.pth
  python translate.py --method=nst --content=photos/ --style=painting.png --output=out/
  python translate.py --method=nst --config=configs/nst.py --content=face.png \
      --style=painting.png --output=out/ --config.nst.optimizer=lbfgs --config.nst.steps=300

Gatys et al.'s own choices: --config.nst.content_layer=conv4_2, equal style weights
(--config.nst.style_layer_weights="(1.,1.,1.,1.,1.)"), L-BFGS, white-noise start. The thesis
found the domain's mean image the best start for portrait -> photo:
--config.nst.init=mean --config.nst.mean_dir=photos/. Writes OUTPUT/<name> for each content
image and OUTPUT/losses.csv (image, step, total, content, style, tv).

The balance of content and style depends on the feature magnitudes of the real ImageNet
weights, which were not available where this was written: the default ratio is the thesis's
alpha / beta = 1e-5 (it also compared 1e-3, --config.nst.style_weight=1e3); watch the content
and style columns of losses.csv and tune style_weight.
"""

import ml_collections


def vgg_config(pool: str = "avg") -> ml_collections.ConfigDict:
    """The VGG19 section shared by the methods that use VGG features."""
    vgg = ml_collections.ConfigDict()
    vgg.weights = ""  # Converted VGG19 file; "" = $JAXFACES_VGG19 or the cache; "random" = tests.
    vgg.pool = pool  # "avg" (Gatys, for synthesis) or "max" (as trained).
    return vgg


def get_config() -> ml_collections.ConfigDict:
    """Returns the thesis's style-transfer configuration."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # Seeds the noise of the initial images.
    config.method = "nst"  # Style transfer: an optimisation per image, no training.
    config.vgg = vgg_config()

    config.nst = nst = ml_collections.ConfigDict()
    nst.content_layer = "conv3_2"  # Thesis conv3_2; Gatys et al. conv4_2.
    nst.style_layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")  # Gram layers.
    nst.style_layer_weights = (0.5, 1.0, 1.5, 3.0, 4.0)  # w_l per style layer (thesis).
    nst.content_weight = 1.0  # alpha.
    nst.style_weight = 1e5  # beta: alpha / beta = 1e-5, the stronger of the thesis's two ratios.
    nst.tv_weight = 0.0  # Total-variation weight (0-255 pixel units); 0 = off.
    nst.init = "content"  # "content" (+ init_noise), "noise" (white) or "mean" (of mean_dir).
    nst.init_noise = 0.0  # Std of Gaussian noise added to the content start (0-255 units).
    nst.mean_dir = ""  # Folder whose mean image starts the optimisation (init="mean").
    nst.optimizer = "adam"  # "adam" (thesis) or "lbfgs" (Gatys et al., neural-style).
    nst.lr = 2.0  # Adam learning rate in 0-255 pixel units (L-BFGS uses a line search).
    nst.steps = 100  # Optimisation steps (L-BFGS: iterations).
    nst.lbfgs_memory = 10  # L-BFGS history length.
    nst.size = 256  # Images are optimised at size x size, then resized back.
    nst.batch_size = 8  # Content images optimised together (independently) per batch.
    return config
