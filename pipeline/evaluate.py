"""Re-evaluate a recorded run: ``python -m pipeline.evaluate RUN_ID [--uri URI]``.

Downloads the run's ``model.npz`` and ``config.yaml``, reloads the data set the config names
(checking its digest) and prints the test accuracy and loss next to the ones the run logged.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.artifacts import load_config, load_model
from pipeline.data import load
from pipeline.fit import evaluate
from pipeline.tracking import store
from pipeline.tracking.runs import run_artifact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.evaluate",
        description="Reload a recorded run's network and data set, and evaluate it on the test "
        "set again, beside the test accuracy and loss the run logged.",
    )
    parser.add_argument(
        "run_id",
        metavar="RUN_ID",
        help="the MLflow run: the id pipeline.train prints (also on the run's UI page and in "
        "`python -m pipeline.runs list --each`)",
    )
    parser.add_argument("--uri", default=None, help="tracking URI (default: the project store)")
    args = parser.parse_args(argv)
    from mlflow.exceptions import MlflowException

    try:
        logged = store.client(args.uri).get_run(args.run_id).data.metrics
        cfg = load_config(run_artifact(args.run_id, "config.yaml", args.uri))
        net = load_model(run_artifact(args.run_id, "model.npz", args.uri))
    except (MlflowException, OSError, store.StoreError) as err:
        print(f"error: cannot load run {args.run_id}: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    loss, accuracy = evaluate(net, load(cfg.data, net.dtype.name).test)
    print(f"test accuracy {accuracy:.4%} (logged {logged.get('test_accuracy', float('nan')):.4%})")
    print(f"test loss     {loss:.6f} (logged {logged.get('test_loss', float('nan')):.6f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
