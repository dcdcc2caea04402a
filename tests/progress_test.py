"""The console progress line."""

import time

from jaxfaces.training.progress import Progress, format_duration


def test_format_duration():
    assert format_duration(0) == "0s"
    assert format_duration(59.4) == "59s"
    assert format_duration(75) == "1m15s"
    assert format_duration(3725) == "1h02m"


def test_line_reports_step_losses_rate_and_eta():
    p = Progress(first_step=0, num_steps=100)
    p.restart(10)
    time.sleep(0.2)
    line = p.line(20, {"loss/g_a": 0.5, "loss/d_a": 0.25, "lr": 1e-3})
    assert line.startswith("step  20/100 | d_a=0.250 g_a=0.500 |")
    assert "lr" not in line
    assert 10 < p.steps_per_sec <= 50  # 10 steps in >= 0.2 s.
    eta = 80 / p.steps_per_sec
    assert line.endswith(f"ETA {format_duration(eta)}")
