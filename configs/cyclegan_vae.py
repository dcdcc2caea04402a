"""CycleGAN+VAE, the thesis's latent-space CycleGAN (its section 3.2.2), at 64 px.

One command trains both stages: first a VAE shared by both domains (`vae_stage`), then,
with the encoder and decoder frozen, a CycleGAN between the latent spaces (`train`, `optim`,
`loss`); translation is decoder(G(encoder(x))).

  python train.py --config=configs/cyclegan_vae.py --workdir=runs/cvae \
      --config.data.a=../shared/data/thesis_faces/photo \
      --config.data.b=../shared/data/thesis_faces/painting
  # A VAE trained before (a workdir of a cyclegan_vae run) skips stage 1:
  python train.py --config=configs/cyclegan_vae.py --workdir=runs/cvae2 \
      --config.vae_stage.pretrained=runs/cvae ...

Stopped (Ctrl-C) in either stage, the same command resumes there. The thesis gives no
sizes; those below are chosen for its 64 px faces (reasons beside each field). An epoch of
the thesis's data is max(photos, paintings) = 885 images, 222 steps of 4: the VAE trains
50 epochs, the latent CycleGAN 200 (100 constant, 100 decaying), as the thesis's CycleGANs.
Expect the VAE's reconstruction L1 to bound how close a translation gets to its target.
"""

import ml_collections

from configs import cyclegan
from configs.nst import vgg_config


def get_config() -> ml_collections.ConfigDict:
    """Returns the CycleGAN+VAE configuration."""
    base = cyclegan.get_config()
    config = ml_collections.ConfigDict()
    config.seed = 0  # Seeds parameters, data order, augmentation, sampling and the pools.
    config.method = "cyclegan_vae"  # jaxfaces/methods/cyclegan_vae.py.

    config.data = data = base.data  # As configs/cyclegan.py (comments there).
    data.load_size = 72  # Load at 72 px ...
    data.size = 64  # ... and crop 64 px faces (the thesis's size).
    data.batch_size = 4  # Per domain: the VAE sees 8 images a step (both domains).

    config.model = ml_collections.ConfigDict()
    config.model.vae = v = ml_collections.ConfigDict()
    v.latent_size = 8  # Side of the latent map at data.size: 64 px -> 8 x 8 (3 stride-2 steps).
    v.latent_channels = 16  # C: 8 x 8 x 16 = 1,024 numbers for 64 x 64 x 3 = 12,288 (1/12).
    v.nf = 32  # Filters of the first convolution (doubling at each stride-2 step: 256 at 8 x 8).
    v.n_blocks = 2  # Residual blocks at the latent resolution, in the encoder and the decoder.
    v.norm = "none"  # none | instance (instance norm would drop each image's mean colours).
    v.padding = "reflect"  # reflect (thesis) | zero.
    v.upsample = "nearest"  # Decoder: nearest | bilinear (resize-convolution, thesis) | transpose.
    config.model.latent_generator = g = ml_collections.ConfigDict()
    g.ngf = 128  # Filters of G and F (the latent is 8 x 8: width is cheap there).
    g.n_blocks = 6  # Residual blocks (the thesis's 64 px generator has 6).
    g.norm = "instance"  # instance (as the CycleGAN generators) | none.
    g.padding = "reflect"  # reflect | zero.
    g.residual = True  # Output = input + the network's: G and F learn a change of the latent.
    config.model.latent_discriminator = d = ml_collections.ConfigDict()
    d.ndf = 64  # Filters of the first convolution (the reference PatchGAN's).
    d.n_layers = 2  # Hidden 3x3 layers: each logit sees 9 x 9 latent positions (the whole map).
    d.norm = "instance"  # instance (as the reference PatchGAN) | none.
    d.padding = "reflect"  # reflect | zero.

    config.loss = loss = ml_collections.ConfigDict()  # The latent CycleGAN's (thesis defaults).
    loss.gan_mode = "lsgan"  # lsgan (thesis) | vanilla | wgan-gp | hinge.
    loss.gp_weight = 10.0  # wgan-gp: weight of the gradient penalty.
    loss.lambda_a = 10.0  # Cycle loss z -> G -> F -> z (L1 on latents).
    loss.lambda_b = 10.0  # Cycle loss w -> F -> G -> w.
    loss.lambda_identity = 0.5  # Identity G(w) ~ w, F(z) ~ z, relative to lambda_a / b; 0: off.
    loss.pool_size = 50  # History pool of fake latents per direction (0 disables it).

    config.vae_stage = s = ml_collections.ConfigDict()  # Stage 1: the VAE.
    s.num_steps = 11_100  # 50 epochs of the thesis's data.
    s.pretrained = ""  # Workdir of a cyclegan_vae run whose VAE to use: stage 1 is skipped.
    s.kl_weight = 0.01  # Times the KL to N(0, I) per latent element (reconstruction L1: 1).
    s.vgg_weight = 0.0  # Times the L1 of VGG19 features (needs VGG19 weights); 0: off.
    s.vgg_layer = "relu2_1"  # The VGG19 layer of that term.
    s.lr = 5e-4  # Adam's learning rate ...
    s.b1 = 0.9  # ... beta1 ...
    s.b2 = 0.999  # ... and beta2.
    s.decay_fraction = 0.5  # The last half of the stage decays the lr linearly to 0.

    config.vgg = vgg_config(pool="max")  # VGG19 weights, for vae_stage.vgg_weight > 0.
    config.optim = base.optim  # Stage 2's Adam: 2e-4, b1 0.5 (the reference's).
    config.train = train = base.train  # Stage 2's steps and schedule; logs, checkpoints, eval.
    train.num_steps = 44_400  # Latent CycleGAN: 200 epochs of the thesis's data ...
    train.decay_fraction = 0.5  # ... the last 100 decaying linearly to 0.
    train.log_images_every = (
        1000  # Stage 1: input | reconstruction; stage 2: input | translation | cycle.
    )
    return config
