"""UNIT (Liu, Breuel, Kautz 2017) with the authors' defaults, at 256 px.

  python train.py --config=configs/unit.py --workdir=runs/unit \
      --config.data.root=/path/to/dataset          # trainA/ trainB/ [testA/ testB/]

Sources of the defaults (each field says which):
  [yaml]  the authors' configuration files: NVlabs/UNIT configs/*.yaml, the same values as
          NVlabs/MUNIT's configs (e.g. edges2shoes_folder.yaml) for the fields they share:
          lr 1e-4, Adam (0.5, 0.999), weight_decay 1e-4, step decay x0.5 every 100k
          iterations, max_iter 1M, batch 1, gan_w 1, recon_x_w 10, recon_kl_w 0.01,
          recon_x_cyc_w 10, recon_kl_cyc_w 0.01, gen dim 64 / n_downsample 2 / n_res 4 /
          relu / reflect, dis dim 64 / norm none / lrelu / n_layer 4 / lsgan / 3 scales /
          reflect, 256 px crops of images resized to 256 (shorter side).
  [code]  the UNIT trainer and networks (NVlabs/MUNIT trainer.py UNIT_Trainer, networks.py
          VAEGen, MsImageDis): kaiming init of the generators, N(0, 0.02) of the
          discriminators, unit-variance posterior, KL term mean(h^2), the loss sums, the
          discriminators updated before the generators, no image pool.
  [paper] the 2017 release and paper (mingyuliutw/UNIT, COCOResGen2: n_enc_shared_blk 1,
          n_gen_shared_blk 1): the last encoder block and the first decoder block shared.
          The later release (NVlabs/UNIT, MUNIT's UNIT_Trainer) shares no layers: set
          model.generator.shared_blocks=0 for it.
Expect the authors' results only after their ~1M iterations (days on one GPU).
"""

import ml_collections

from configs import cyclegan


def get_config() -> ml_collections.ConfigDict:
    """Returns the UNIT configuration with the authors' defaults."""
    base = cyclegan.get_config()
    config = ml_collections.ConfigDict()
    config.seed = 0  # Seeds parameters, data order, augmentation and the latent noise.
    config.method = "unit"  # jaxfaces/methods/unit.py.

    config.data = data = base.data  # Sources as configs/cyclegan.py (comments there).
    data.load_size = 256  # [yaml] new_size 256: images resized to 256 ...
    data.size = 256  # ... [yaml] crop_image_height / width 256: 256 px crops.
    data.flip = True  # [code] random horizontal flips (the authors' data loader).
    data.batch_size = 1  # [yaml] batch_size 1 (per domain).

    config.model = ml_collections.ConfigDict()
    config.model.generator = g = ml_collections.ConfigDict()
    g.dim = 64  # [yaml] gen.dim: filters of the first convolution (doubling when downsampling).
    g.n_downsample = 2  # [yaml] gen.n_downsample: stride-2 convolutions (latent at 1/4 size).
    g.n_res = 4  # [yaml] gen.n_res: residual blocks of each encoder and of each decoder ...
    g.shared_blocks = 1  # ... [paper] of which the encoders' last / decoders' first are shared.
    g.padding = "reflect"  # [yaml] gen.pad_type: reflect | zero.
    g.init = "kaiming"  # [yaml] init: kaiming (He normal) | gaussian (N(0, 0.02)).
    config.model.discriminator = d = ml_collections.ConfigDict()
    d.ndf = 64  # [yaml] dis.dim: filters of the first convolution (doubling, no cap).
    d.n_layers = 4  # [yaml] dis.n_layer: stride-2 4x4 convolutions per scale.
    d.num_scales = 3  # [yaml] dis.num_scales: the image, then 2 average-pooled halvings.
    d.norm = "none"  # [yaml] dis.norm: none | instance.
    d.padding = "reflect"  # [yaml] dis.pad_type: reflect | zero.

    config.loss = loss = ml_collections.ConfigDict()
    loss.gan_mode = "lsgan"  # [yaml] dis.gan_type: lsgan | vanilla (the authors' nsgan).
    loss.gan_w = 1.0  # [yaml] gan_w: adversarial terms (generators and discriminators).
    loss.recon_x_w = 10.0  # [yaml] recon_x_w: L1 of each VAE's reconstruction.
    loss.recon_kl_w = 0.01  # [yaml] recon_kl_w: KL term mean(h^2) of each image's code.
    loss.recon_x_cyc_w = 10.0  # [yaml] recon_x_cyc_w: L1 of x -> other domain -> back.
    loss.recon_kl_cyc_w = 0.01  # [yaml] recon_kl_cyc_w: KL term of each translation's code.

    config.optim = o = ml_collections.ConfigDict()
    o.lr = 1e-4  # [yaml] lr: Adam's learning rate (generators and discriminators).
    o.b1 = 0.5  # [yaml] beta1.
    o.b2 = 0.999  # [yaml] beta2.
    o.weight_decay = 1e-4  # [yaml] weight_decay (PyTorch Adam's: L2 added to the gradient).
    o.lr_policy = "step"  # [yaml] lr_policy: step (x gamma every step_size) | linear.
    o.step_size = 100_000  # [yaml] step_size: iterations between decays.
    o.gamma = 0.5  # [yaml] gamma: the decay factor.

    config.train = train = base.train  # Logs, checkpoints, eval as configs/cyclegan.py.
    train.num_steps = 1_000_000  # [yaml] max_iter.
    train.decay_fraction = 0.5  # lr_policy="linear" only: the last half decays to 0.
    train.ema_decay = 0.0  # > 0: translate with a moving average of the generators (not UNIT's).
    train.log_images_every = 10_000  # [yaml] image_save_iter: input | recon | translation | cycle.
    train.ckpt_every = 10_000  # [yaml] snapshot_save_iter.
    return config
