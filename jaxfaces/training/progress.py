"""One console line per interval: step, losses, steps/s and time left."""

import time


def format_duration(seconds: float) -> str:
    """`75.0 -> '1m15s'`, `3725 -> '1h02m'`."""
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Measures steps/s between reports; `restart` excludes compilation from the first."""

    def __init__(self, first_step: int, num_steps: int):
        self.num_steps = num_steps
        self.last_step, self.last_time = first_step, time.perf_counter()
        self.steps_per_sec = 0.0

    def restart(self, step: int) -> None:
        """Measures from `step`, now (call it once the first step, compiled, has finished)."""
        self.last_step, self.last_time = step, time.perf_counter()

    def line(self, step: int, scalars: dict[str, float]) -> str:
        """The console line for `step`, given the scalars logged there."""
        now = time.perf_counter()
        if step > self.last_step:
            self.steps_per_sec = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_step, self.last_time = step, now
        eta = (self.num_steps - step) / self.steps_per_sec if self.steps_per_sec else 0.0
        losses = " ".join(
            f"{k.removeprefix('loss/')}={v:.3f}"
            for k, v in sorted(scalars.items())
            if k.startswith("loss/")
        )
        width = len(str(self.num_steps))
        return (
            f"step {step:>{width}}/{self.num_steps} | {losses} | "
            f"{self.steps_per_sec:.2f} steps/s | ETA {format_duration(eta)}"
        )
