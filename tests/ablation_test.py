"""bench/ablation.py: each variant is the baseline plus exactly its switch; the report table."""

import argparse

import pytest

from bench import ablation


def flat(config, prefix=""):
    out = {}
    for key, value in config.items():
        if hasattr(value, "items"):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def changed(name, steps=400):
    args = ablation.parse_args(["--steps", str(steps), "--size", "48", "--batch", "2"])
    base = flat(ablation.variant_config("baseline", args, "/data"))
    variant = flat(ablation.variant_config(name, args, "/data"))
    assert set(base) == set(variant)
    return {k: variant[k] for k in base if variant[k] != base[k]}


def test_baseline_is_the_demo_networks_at_the_asked_size_and_budget():
    args = ablation.parse_args(["--steps", "300", "--size", "48", "--batch", "2", "--seed", "3"])
    c = ablation.variant_config("baseline", args, "/data")
    assert c.seed == 3
    assert (c.data.size, c.data.synthetic.size, c.data.batch_size) == (48, 48, 2)
    assert (c.train.num_steps, c.train.decay_steps, c.train.eval_every) == (300, 150, 0)
    assert (c.model.generator.ngf, c.model.generator.n_blocks) == (16, 3)
    assert c.loss.identity == "pixel" and c.loss.tv_weight == 0 and c.model.discriminator.pack == 1


@pytest.mark.parametrize(
    "name, expected",
    [
        ("resize_conv", {"model.generator.upsample": "nearest"}),
        ("unet", {"model.generator.name": "unet"}),
        ("tv", {"loss.tv_weight": 1e-4}),
        ("pacgan", {"model.discriminator.pack": 2}),
        ("hinge", {"loss.gan_mode": "hinge"}),
        ("wgan_gp", {"loss.gan_mode": "wgan-gp"}),
        ("cyclegan_nst_gram", {"loss.identity": "vgg", "loss.vgg.style_form": "gram"}),
    ],
)
def test_each_variant_changes_exactly_its_switch(name, expected):
    assert changed(name) == expected


def test_noise_anneals_over_the_run_and_thesis_has_every_switch():
    assert set(changed("d_noise", steps=250)) <= {
        "loss.d_noise.kind",
        "loss.d_noise.start",
        "loss.d_noise.anneal_steps",
    }
    args = ablation.parse_args(["--steps", "250"])
    noise = ablation.variant_config("d_noise", args, "/data").loss.d_noise
    assert (noise.kind, noise.start, noise.anneal_steps) == ("uniform", 0.5, 250)
    thesis = changed("thesis")
    for single in ("resize_conv", "tv", "pacgan", "d_noise", "cyclegan_nst"):
        assert changed(single).items() <= thesis.items(), single


def test_vgg_variants_say_when_they_run_with_random_weights(tmp_path, monkeypatch):
    args = ablation.parse_args(["--steps", "4"])
    monkeypatch.setenv("JAXFACES_VGG19", str(tmp_path / "absent.msgpack"))
    plain = ablation.variant_config("baseline", args, "/data")
    assert ablation.vgg_note(plain) == ""
    nst = ablation.variant_config("cyclegan_nst", args, "/data")
    assert ablation.vgg_note(nst) == "random VGG" and nst.vgg.weights == "random"
    (tmp_path / "vgg.msgpack").write_bytes(b"converted")
    monkeypatch.setenv("JAXFACES_VGG19", str(tmp_path / "vgg.msgpack"))
    nst = ablation.variant_config("cyclegan_nst", args, "/data")
    assert ablation.vgg_note(nst) == "VGG19 ImageNet" and nst.vgg.weights != "random"


def test_markdown_table_rows_and_identity_line():
    def ev(l1, identity):
        m = {"l1": l1, "identity_l1": identity, "ratio": l1 / identity, "psnr": 17.0}
        return {"AtoB": {**m, "cycle_l1": 0.2}, "BtoA": {**m, "cycle_l1": 0.3}}

    rows = [("baseline", "", ev(0.2, 0.32), 3.0), ("thesis", "random VGG", ev(0.16, 0.32), 0.5)]
    args = argparse.Namespace(steps=400, size=64, batch=2, seed=1)
    lines = ablation.markdown_table(rows, args).splitlines()
    assert lines[0].startswith("Ablation: 400 steps at 64 px, batch 2, seed 1,")
    body = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert body[0] == (
        "| baseline | 0.2000 (0.62) | 17.00 | 0.2000 (0.62) | 17.00 | 0.2000 / 0.3000 | 3.00 |  |"
    )
    assert body[1].startswith("| thesis | 0.1600 (0.50) |") and body[1].endswith("| random VGG |")
    assert lines[-1] == "Identity baseline: A->B 0.3200, B->A 0.3200"
