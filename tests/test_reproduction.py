"""The report's numbers on full MNIST: softmax always, the rest with `make test-all`."""

from __future__ import annotations

import pytest

from pipeline import fit
from pipeline.train import load_data

# preset: the report's test accuracy (its sections 2, 4, 5.1, 6.1 and 6.2)
REPORT = {"softmax": 0.9251, "relu": 0.9769, "momentum": 0.9745, "sigmoid": 0.9743, "l2": 0.9579}
FAST = ("softmax",)  # the others (a minute each on 2 cores) run in make test-all


@pytest.mark.parametrize(
    "preset", [p if p in FAST else pytest.param(p, marks=pytest.mark.slow) for p in REPORT]
)
def test_preset_reproduces_the_report(make_config, preset: str) -> None:
    cfg = make_config(f"experiment={preset}", "tracking=none", "trainer.progress=false")
    result = fit.train(cfg, load_data(cfg))
    assert abs(result.test_accuracy - REPORT[preset]) < 0.005  # within half a point
    assert result.stop_reason == "early stopping"
