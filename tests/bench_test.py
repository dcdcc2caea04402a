"""The benchmarks' flags, FLOP counts and tables (the benchmarks themselves never run here)."""

import jax
import jax.numpy as jnp
import pytest

from bench import conv_layers, flops, train_step, translate
from jaxfaces import rng as rngs
from jaxfaces.models import discriminators, fast_conv, generators


def test_cpu_and_device_defaults_and_errors():
    cpu = train_step.parse_args([])
    assert (cpu.size, cpu.batch, cpu.dtype, cpu.device) == ([64, 128], [1, 4], ["float32"], False)
    dev = train_step.parse_args(["--device", "--batch", "8"])
    assert (dev.size, dev.batch, dev.dtype) == ([256], [8], ["float32", "bfloat16"])
    assert dev.min_time == 10.0 and cpu.min_time == 20.0
    with pytest.raises(SystemExit):
        train_step.parse_args(["--size", "30"])
    with pytest.raises(SystemExit):
        train_step.parse_args(["--dtype", "float16"])
    assert translate.parse_args([]).size == [64, 256]


def test_flops_count_real_multiply_adds_only():
    x = jax.ShapeDtypeStruct((2, 10, 10, 4), jnp.float32)
    w = jax.ShapeDtypeStruct((3, 3, 4, 8), jnp.float32)
    with fast_conv.impl("xla"):
        conv = fast_conv.conv2d
        forward = 2 * (2 * 8 * 8) * 9 * 4 * 8
        assert flops.count(conv, x, w) == forward
        both = jax.grad(lambda x, w: conv(x, w).sum(), (0, 1))
        assert flops.count(both, x, w) == 3 * forward  # Input and kernel gradients.
        # Transposed: each input pixel meets each of the 9 taps, less those falling off
        # the output (the first row and column of tap 0): (5*5*9 - 2*5*3 + 1) * 4 * 8.
        xt = jax.ShapeDtypeStruct((1, 5, 5, 4), jnp.float32)
        assert flops.count(fast_conv.conv_transpose2x, xt, w) == 2 * (225 - 30 + 1) * 32
    assert flops.count(lambda a: a @ a, jnp.ones((3, 5, 5))) == 2 * 3 * 5 * 5 * 5


def test_report_table_and_ratio_lines_last():
    results = [
        {
            "size": 64,
            "batch": 1,
            "dtype": "float32",
            "compile": 30.0,
            "flops": 120e9,
            "xla_flops": 130e9,
            "warmup": {"jax": [3.0], "torch": [2.0]},
            "samples": {"jax": [1.0, 2.0, 1.5], "torch": [2.0, 2.0, 2.0]},
        },
        {
            "size": 256,
            "batch": 8,
            "dtype": "bfloat16",
            "compile": None,
            "flops": 4e12,
            "warmup": {"torch": []},
            "samples": {"torch": [0.5]},
        },
    ]
    text = train_step.report(results, ceilings={"float32": 200e9, "bfloat16": 1e15})
    lines = text.splitlines()
    assert lines[0].startswith("| config | jax s/iter | torch s/iter | ratio (jax/torch) |")
    assert "GFLOP/step" in lines[0] and "jax MFU" in lines[0]
    assert lines[2] == (
        "| 64px batch1 | 1.500 | 2.000 | 0.75 | 120.0 | 80.0 | 60.0 | 30.0 | 40.0% | 30.0% |"
    )
    assert lines[3] == (
        "| 256px batch8 bfloat16 | - | 0.500 | - | 4000.0 | - | 8000.0 | - | - | 0.8% |"
    )
    assert "XLA cost_analysis 130.0 GFLOP/step" in text
    assert lines[-1] == "RATIO train_step 64px batch1 jax/torch = 0.75"
    assert "MFU" not in train_step.report(results)


def test_translate_report():
    r = {"size": 64, "batch": 2, "compile": 5.0, "samples": {"jax": [0.5], "torch": [1.0]}}
    lines = translate.report([r]).splitlines()
    assert lines[2] == "| 64px batch2 | 4.00 | 2.00 | 0.50 | 5.0 |"
    assert lines[-1] == "RATIO translate 64px batch2 jax/torch = 0.50"


def test_conv_layers_are_the_reference_networks_layers():
    """bench/conv_layers.py's list, weighted by count, has exactly the reference generator's
    and PatchGAN's multiply-adds (counted on the networks themselves)."""
    size = 32
    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    layers = conv_layers.layers(size)
    assert [layer["count"] for layer in layers if layer["name"] == "G res 3x3"] == [18]
    for prefix, net in (
        ("G", generators.ResnetGenerator(ngf=64, n_blocks=9)),
        ("D", discriminators.PatchGAN(ndf=64, n_layers=3)),
    ):
        with fast_conv.impl("xla"):
            params = jax.eval_shape(lambda net=net: net.init(rngs.key(0), jnp.zeros(x.shape)))
            counted = flops.count(lambda p, x, net=net: net.apply(p, x), params, x)
        listed = sum(
            conv_layers.macs(layer) * layer["count"]
            for layer in layers
            if layer["name"][0] == prefix
        )
        assert counted == 2 * listed
