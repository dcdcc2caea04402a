"""DTN on the built-in procedural faces at 32 px, on the CPU, f = the project's own encoder.

  python train.py --config=configs/dtn_demo.py --workdir=runs/dtn_demo

Writes the built-in data to data/faces (as configs/demo.py), trains a VAE on the photos and
paintings (stage 1: f is its encoder, g starts as its decoder), then DTN's g and three-way
discriminator with f frozen (stage 2), then writes test sheets to runs/dtn_demo/samples and
prints the A -> B L1 to the true translations against the identity baseline (DTN translates
one way: B -> A is reported as missing). Another data set in the same layout:
`--config.data.root=DIR --config.data.synthetic.enabled=False`; folders:
`--config.data.root= --config.data.a=... --config.data.b=... --config.data.test_a=...
--config.data.test_b=...` (plus data.truth_a2b); images of another size are resized to 32 px.
Measured (1,500 + 1,500 steps, compilation and the final evaluation included): L1 to the
true translations 0.51x the identity baseline's A->B, 551 CPU seconds (26 minutes wall on 2
cores shared with three other jobs; the paper's alpha = 100 instead: 0.89x).
"""

import ml_collections

from configs import demo, dtn


def get_config() -> ml_collections.ConfigDict:
    """Returns the CPU-sized DTN configuration."""
    config = dtn.get_config()
    demo.use_builtin_faces(config)
    config.model.f.kind = "autoencoder"  # f: the encoder of the VAE trained in stage 1.
    config.model.g_init = "decoder"  # g starts as the VAE's decoder (G starts as identity).
    config.model.vae.latent_size = 8  # 32 px -> 8 x 8 (2 stride-2 steps).
    config.model.vae.latent_channels = 16  # 8 x 8 x 16 = 1,024 numbers for 3,072.
    config.model.vae.nf = 16  # 16, 32, 64 filters.
    config.model.vae.n_blocks = 2  # Residual blocks at 8 x 8.
    config.model.discriminator.ndf = 16  # A quarter of the reference width.
    config.model.discriminator.n_layers = 2  # 34 x 34 patches: the whole 32 px image.
    config.loss.alpha = 1.0  # f-constancy: lower than the paper's 100 (docs/ABLATION.md).
    config.vae_stage.num_steps = 1500  # Stage 1: 30 epochs of 400 + 400 images.
    config.vae_stage.lr = 1e-3  # Faster than 5e-4 for a short run.
    config.optim.lr = 5e-4  # Stage 2: faster than the reference's 2e-4 for a short run.
    config.train.num_steps = 1500  # Stage 2: DTN.
    config.train.decay_fraction = 0.5  # Linear decay over stage 2's second half.
    config.train.log_every = 100  # A console line every 100 steps.
    config.train.log_images_every = 500  # Image grids in TensorBoard (both stages).
    config.train.eval_every = 0  # Test metrics once, at the end.
    config.train.ckpt_every = 500  # Checkpoints (and at the end of each stage).
    config.train.ema_decay = 0.995  # Translate with the moving average of g (steadier).
    return config
