"""UNIT on the built-in procedural faces at 32 px, on the CPU.

  python train.py --config=configs/unit_demo.py --workdir=runs/unit_demo

Writes the built-in data to data/faces (as configs/demo.py), trains UNIT at 32 px, then
writes test sheets to runs/unit_demo/samples and prints the L1 to the true translations
against the identity baseline (input vs truth). Another data set in the same layout:
`--config.data.root=DIR --config.data.synthetic.enabled=False`; folders:
`--config.data.root= --config.data.a=... --config.data.b=... --config.data.test_a=...
--config.data.test_b=...` (plus data.truth_a2b / truth_b2a); images of another size are
resized to 32 px. Measured (2026-12-02, AMD EPYC, 2 cores shared with one other training
run): this config as it is, 800 steps, reached 0.72x / 0.70x the identity baseline's L1 to
the true translations (A->B / B->A) in 871 CPU s (795 user + 76 system, compilation and the
final evaluation included: 7-8 minutes of 2 idle cores if it keeps both busy; its wall time
here, sharing them, 879 s); with bench/ablation.py's 36 px loads and 32 px random crops
the same networks and steps gave 0.62x / 0.63x. The main job (configs/demo.py) at the same
CPU time: docs/ABLATION.md, "UNIT beside the pixel CycleGAN".
"""

import ml_collections

from configs import demo, unit


def get_config() -> ml_collections.ConfigDict:
    """Returns the CPU-sized UNIT configuration."""
    config = unit.get_config()
    demo.use_builtin_faces(config)
    config.model.generator.dim = 16  # A quarter of the authors' width: 16, 32, 64 filters.
    config.model.discriminator.ndf = 16  # A quarter of the authors' width.
    config.model.discriminator.n_layers = 3  # 32 px: 3 stride-2 layers at each of 3 scales.
    config.optim.lr = 5e-4  # Faster than the authors' 1e-4 for a short run.
    config.optim.weight_decay = 0.0  # Off for a short run.
    config.optim.lr_policy = "linear"  # Constant, then linear decay over the last half.
    config.train.num_steps = 800  # Steps (600 reached only 0.72x / 0.76x identity L1).
    config.train.decay_fraction = 0.5  # Linear decay over the second half.
    config.train.log_every = 100  # A console line every 100 steps.
    config.train.log_images_every = 400  # Image grids in TensorBoard.
    config.train.eval_every = 0  # Test metrics once, at the end.
    config.train.ckpt_every = 400  # Checkpoints.
    config.train.ema_decay = 0.995  # Translate with the moving average of the generators.
    return config
