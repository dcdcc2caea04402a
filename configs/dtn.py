"""DTN, the Domain Transfer Network (Taigman, Polyak & Wolf, ICLR 2017), at 64 px, A -> B.

G = g(f(x)) with f fixed: here f is VGG19 up to relu4_1 (the converted torchvision weights,
`config.vgg.weights`), the nearest the project has to the paper's pretrained face network
(DeepFace); g decodes f's 8 x 8 x 512 features to a 64 px image. One command:

  python train.py --config=configs/dtn.py --workdir=runs/dtn \
      --config.data.a=../shared/data/thesis_faces/photo \
      --config.data.b=../shared/data/thesis_faces/painting
  # f = the project's own encoder, a VAE trained on both domains in a first stage:
  python train.py --config=configs/dtn.py --workdir=runs/dtn_ae \
      --config.model.f.kind=autoencoder --config.model.g_init=decoder ...
  # f = the encoder of a CycleGAN+VAE run (its VAE; the first stage is skipped):
  ... --config.model.f.kind=autoencoder --config.model.g_init=decoder \
      --config.vae_stage.pretrained=runs/cvae

Without VGG19 weights the run stops with the usual error saying how to convert them.
Where each default comes from is said beside it. An epoch of the thesis's data is
max(photos, paintings) = 885 images, 222 steps of 4.
"""

import ml_collections

from configs import cyclegan
from configs.nst import vgg_config


def get_config() -> ml_collections.ConfigDict:
    """Returns the DTN configuration."""
    base = cyclegan.get_config()
    config = ml_collections.ConfigDict()
    config.seed = 0  # Seeds parameters, data order, augmentation and the VAE's sampling.
    config.method = "dtn"  # jaxfaces/methods/dtn.py.

    config.data = data = base.data  # As configs/cyclegan.py (comments there).
    data.load_size = 72  # Load at 72 px ...
    data.size = 64  # ... and crop 64 px faces (the thesis's size; the paper's g makes 64 px).
    data.batch_size = 4  # Per domain (x_s from A, x_t from B each step); the paper gives none.

    config.model = ml_collections.ConfigDict()
    config.model.f = f = ml_collections.ConfigDict()
    f.kind = "vgg19"  # vgg19 (pretrained, as the paper's f) | autoencoder (trained in stage 1).
    f.vgg_layer = "relu4_1"  # vgg19: f's layer (a high layer, as DeepFace's representation).
    config.model.g_init = "random"  # random (the paper) | decoder (autoencoder f: its decoder).
    config.model.vae = v = ml_collections.ConfigDict()  # The autoencoder f and g's layers.
    v.latent_size = 8  # autoencoder f: side of its latent at data.size (64 px -> 8 x 8).
    v.latent_channels = 16  # autoencoder f: channels of its latent (8 x 8 x 16).
    v.nf = 32  # g (and the autoencoder): filters at full size, doubling at each halving.
    v.n_blocks = 2  # Residual blocks at f's resolution, in g (and the autoencoder).
    v.norm = "none"  # none | instance (g and the autoencoder).
    v.padding = "reflect"  # reflect | zero.
    v.upsample = "nearest"  # g: nearest | bilinear (resize-convolution) | transpose.
    config.model.discriminator = d = ml_collections.ConfigDict()  # Three logits per patch.
    d.ndf = 64  # Filters of the first convolution (the reference PatchGAN's).
    d.n_layers = 3  # Stride-2 convolutions: 70 x 70 patches, the whole 64 px face.
    d.norm = "instance"  # instance | none.

    # alpha, beta, gamma: the paper's face experiment (photos -> emoji): 100, 1, 0.05 (the
    # values a public replication, davrempe/domain-transfer-net, also uses). The paper sums
    # each term over examples and pixels; methods/dtn.py takes means (size-independent).
    config.loss = loss = ml_collections.ConfigDict()
    loss.alpha = 100.0  # L_CONST: mean squared difference of f(x_s) and f(G(x_s)).
    loss.beta = 1.0  # L_TID: mean squared difference of x_t and G(x_t).
    loss.gamma = 0.05  # L_TV of G(x_s), B = 1 (mean over pixels).

    config.vae_stage = s = ml_collections.ConfigDict()  # Stage 1 (autoencoder f only).
    s.num_steps = 11_100  # 50 epochs of the thesis's data (as configs/cyclegan_vae.py).
    s.pretrained = ""  # Workdir of a cyclegan_vae run: its VAE is f (and g's start); no stage 1.
    s.kl_weight = 0.01  # Times the KL to N(0, I) per latent element (as configs/cyclegan_vae.py).
    s.lr = 5e-4  # Adam's learning rate ...
    s.b1 = 0.9  # ... beta1 ...
    s.b2 = 0.999  # ... and beta2 (as configs/cyclegan_vae.py).
    s.decay_fraction = 0.5  # The last half of the stage decays the lr linearly to 0.

    config.vgg = vgg_config(pool="max")  # VGG19 weights for f = vgg19 (max pool: as trained).
    # Not taken from the paper (we found no optimiser settings in it): the project's GAN
    # default, Adam 2e-4, b1 0.5 (DCGAN's).
    config.optim = base.optim
    config.train = train = base.train  # Stage 2's steps and schedule; logs, checkpoints, eval.
    train.num_steps = 44_400  # 200 epochs of the thesis's data (as its CycleGANs) ...
    train.decay_fraction = 0.5  # ... the last 100 decaying linearly to 0.
    train.log_images_every = 1000  # Stage 1: reconstructions; stage 2: A -> B, B -> B.
    return config
