"""Numeric gradient checks: the report's Table 1 and a full check of every parameter.

``python -m pipeline.gradcheck`` (a Hydra app on the training config: ``model.activation=relu``,
``trainer.seed=3``) prints both, and records them in MLflow when tracking is on.
Checks always run in float64: in float32 the rounding error of a difference quotient is of
the order of the gradients themselves.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable

import hydra
import numpy as np
from omegaconf import DictConfig

from pipeline import cli
from pipeline.config import CONF_DIR, RegularizerConfig, TrainConfig, to_config
from pipeline.network import Network
from pipeline.optim import Penalty

# The report's Table 1 as printed: (numerical approximation, backprop gradient, absolute
# difference). The printed difference is kept, not recomputed: the original's own columns do
# not always agree (the last row prints 0.000102 where its gradients differ by 5e-05).
REPORT_TABLE1 = {
    "Output bias": (-0.001305, -0.001309, 4e-06),
    "Hidden bias": (-9.77e-05, 0.000229, 0.000327),
    "Input to Hidden i": (-6.390e-05, 0.0002208, 0.00028),
    "Input to Hidden ii": (-0.000137, 0.000221, 0.0003585),
    "Hidden to Output i": (-0.0021, -0.00208, 2.08e-05),
    "Hidden to Output ii": (0.0204, 0.02035, 0.000102),
}


log = logging.getLogger(__name__)


def objective(net: Network, x: np.ndarray, t: np.ndarray, penalty: Penalty) -> float:
    """What training minimises: mean cross-entropy over the batch plus the penalty."""
    loss, _ = net.loss(x, t, net.workspace(len(x)))
    return loss / len(x) + penalty.loss(net.theta, len(x))


def backprop_gradient(net: Network, x: np.ndarray, t: np.ndarray, penalty: Penalty) -> np.ndarray:
    ws = net.workspace(len(x))
    _, probs = net.loss(x, t, ws)
    net.backward(x, t, probs, ws)
    if penalty.active:
        penalty.add_grad(net.theta, net.grad, 1.0, len(x))
    return net.grad.copy()


def numeric_gradient(
    f: Callable[[], float], theta: np.ndarray, eps: float, indices: list[int] | None = None
) -> np.ndarray:
    """Central differences (f(w + eps) - f(w - eps)) / (2 eps), one entry of theta at a time."""
    indices = range(theta.size) if indices is None else indices
    out = np.zeros(len(indices))
    for k, i in enumerate(indices):
        saved = theta[i]
        theta[i] = saved + eps
        plus = f()
        theta[i] = saved - eps
        minus = f()
        theta[i] = saved
        out[k] = (plus - minus) / (2 * eps)
    return out


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||): scale-free, and defined where single entries are zero."""
    denominator = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denominator) if denominator else 0.0


# Every penalty whose gradient the core can take: each option that changes a gradient is here.
PENALTY_VARIANTS = {
    "none": RegularizerConfig(),
    "l1": RegularizerConfig("l1", 0.05, True),
    "l2": RegularizerConfig("l2", 0.05, True),
    "l1 half": RegularizerConfig("l1", 0.05, True, l1_half=True),
    "l1 sum": RegularizerConfig("l1", 0.05, True, scale="sum"),
    "l2 sum": RegularizerConfig("l2", 0.05, True, scale="sum"),
}


def full_check(
    sizes: list[int], activation: str, penalty: str, seed: int = 0, eps: float = 1e-6
) -> tuple[float, float]:
    """Every parameter of a small float64 network under one of ``PENALTY_VARIANTS``:
    (relative error, largest absolute error)."""
    rng = np.random.default_rng(seed)
    net = Network(sizes, activation, "glorot", rng, "float64")
    net.theta[net.n_weights :] = rng.standard_normal(net.theta.size - net.n_weights) * 0.1
    x = rng.standard_normal((6, sizes[0]))
    t = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 6)]
    reg = Penalty(PENALTY_VARIANTS[penalty], net.n_weights, net.theta.size, net.dtype)
    analytic = backprop_gradient(net, x, t, reg)
    numeric = numeric_gradient(lambda: objective(net, x, t, reg), net.theta, eps)
    return relative_error(analytic, numeric), float(np.abs(analytic - numeric).max())


def flat_index(net: Network, array: np.ndarray, index: tuple[int, ...]) -> int:
    """Position in ``theta`` of ``array[index]``, where ``array`` is one of its views."""
    offset = (array.ctypes.data - net.theta.ctypes.data) // net.theta.itemsize
    return offset + int(np.ravel_multi_index(index, array.shape))


def report_table(net: Network, x: np.ndarray, t: np.ndarray, eps: float = 1e-2) -> list[dict]:
    """The report's six weights on one sample, with its epsilon of 1e-2."""
    (w1, w2), (b1, b2) = net.weights, net.biases
    label = int(t.argmax())
    picks = {
        "Output bias": (b2, (b2.size - 1,)),  # "the last ones in their respective layers"
        "Hidden bias": (b1, (b1.size - 1,)),
        "Input to Hidden i": (w1, (14 * 28 + 14, 0)),  # the centre pixel
        "Input to Hidden ii": (w1, (10 * 28 + 12, w1.shape[1] // 2)),
        "Hidden to Output i": (w2, (0, label)),
        "Hidden to Output ii": (w2, (w2.shape[0] // 2, (label + 1) % w2.shape[1])),
    }
    indices = [flat_index(net, array, index) for array, index in picks.values()]
    penalty = Penalty(RegularizerConfig(), net.n_weights, net.theta.size, net.dtype)
    analytic = backprop_gradient(net, x, t, penalty)[indices]
    numeric = numeric_gradient(lambda: objective(net, x, t, penalty), net.theta, eps, indices)
    return [
        {
            "weight": name,
            "numerical": n,
            "backprop": a,
            "abs_difference": abs(n - a),
            "report_numerical": REPORT_TABLE1[name][0],
            "report_backprop": REPORT_TABLE1[name][1],
            "report_abs_difference": REPORT_TABLE1[name][2],
        }
        for name, n, a in zip(picks, numeric, analytic)
    ]


def table1(cfg: TrainConfig) -> list[dict]:
    """Table 1 on the first training image of the configured data, with a fresh network."""
    from pipeline.data import load

    data = load(cfg.data, "float64")
    hidden = cfg.model.hidden[0] if cfg.model.hidden else 128  # the report's 128 tanh units
    init = "glorot" if cfg.model.init == "zeros" else cfg.model.init
    sizes = [data.train.x.shape[1], hidden, data.train.t.shape[1]]
    net = Network(
        sizes, cfg.model.activation, init, np.random.default_rng(cfg.trainer.seed), "float64"
    )
    return report_table(net, data.train.x[:1], data.train.t[:1])


def full_checks(seed: int = 0) -> list[dict]:
    """The full check for every activation and every penalty variant."""
    return [
        {"activation": act, "penalty": pen, "relative_error": rel, "max_abs_error": err}
        for act in ("sigmoid", "tanh", "relu")
        for pen in PENALTY_VARIANTS
        for rel, err in [full_check([12, 7, 5, 4], act, pen, seed)]
    ]


def format_rows(rows: list[dict]) -> str:
    keys = list(rows[0])
    cells = [[f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def summary(rows: list[dict], checks: list[dict]) -> dict[str, float]:
    """The worst of each table, the numbers the PASS line and the MLflow run show."""
    return {
        "table1_max_abs_difference": max(r["abs_difference"] for r in rows),
        "full_max_relative_error": max(c["relative_error"] for c in checks),
    }


def passed(worst: dict[str, float]) -> bool:
    return worst["table1_max_abs_difference"] < 1e-4 and worst["full_max_relative_error"] < 1e-6


def recorded(cfg: TrainConfig) -> tuple[list[dict], list[dict]]:
    """Both tables: read back from the finished MLflow run that holds these very checks, or
    computed now (and recorded, when tracking is on)."""
    if not cfg.tracking.enabled:
        return table1(cfg), full_checks(cfg.trainer.seed)
    import pandas as pd

    from pipeline.tracking.runs import find_finished, log_tables, run_artifact

    identity = identity_tags(cfg)
    uri, experiment = cfg.tracking.uri, cfg.tracking.experiment
    found = find_finished(uri, experiment, identity)
    if found:
        tables = [
            run_artifact(found, f"{name}.csv", uri)
            for name in ("gradcheck_table1", "gradcheck_full")
        ]
        return tuple(pd.read_csv(t).to_dict("records") for t in tables)
    rows, checks = table1(cfg), full_checks(cfg.trainer.seed)
    log_tables(
        cfg,
        "gradcheck",
        {"gradcheck_table1": rows, "gradcheck_full": checks},
        summary(rows, checks),
        identity,
    )
    return rows, checks


def run_checks(cfg: TrainConfig) -> bool:
    """Print both checks (recorded in MLflow unless a finished run holds them already)."""
    rows, checks = recorded(cfg)
    log.info("Table 1 (epsilon 1e-2, one sample, %s):\n%s", cfg.model.activation, format_rows(rows))
    log.info(
        "\nFull check (epsilon 1e-6, float64, network 12-7-5-4, every parameter):\n%s",
        format_rows(checks),
    )
    worst = summary(rows, checks)
    log.info(
        f"\nlargest Table 1 difference {worst['table1_max_abs_difference']:.2e} (bound 1e-4); "
        f"largest relative error {worst['full_max_relative_error']:.2e} (bound 1e-6): "
        f"{'PASS' if passed(worst) else 'FAIL'}"
    )
    return passed(worst)


def identity_tags(cfg: TrainConfig) -> dict[str, str]:
    """What the checks depend on: their code, the data and the network Table 1 uses."""
    from pipeline.data import digest
    from pipeline.tracking.provenance import code_version

    inputs = [digest(cfg.data), cfg.model.hidden, cfg.model.activation, cfg.model.init]
    inputs_hash = hashlib.sha256(repr([*inputs, cfg.trainer.seed]).encode()).hexdigest()
    return {
        "kind": "gradcheck",
        "gradcheck.code": code_version("gradcheck"),
        "gradcheck.inputs": inputs_hash[:16],
    }


@hydra.main(version_base=None, config_path=CONF_DIR, config_name="gradcheck")
def main(raw: DictConfig) -> None:
    if not cli.command(lambda: run_checks(to_config(raw)), "nothing was recorded"):
        sys.exit(1)


if __name__ == "__main__":
    main()
