"""What MLflow's system metrics cost a training run: one monitor cycle (collect CPU, memory,
disk and network; check the run; write the sample), timed on a throwaway SQLite store.

    python -m tools.system_metrics_cost

The monitor runs one cycle per 10 s interval, so its share of a run's time is a cycle's
seconds / 10, whatever an epoch lasts (README, "System metrics").
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path


def main(cycles: int = 20) -> None:
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    from pipeline.tracking import store

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        client, experiment_id = store.open_experiment(uri, "system-metrics-cost")
        run_id = client.create_run(experiment_id).info.run_id
        monitor = SystemMetricsMonitor(run_id, tracking_uri=uri)
        wall, cpu = [], []
        for _ in range(cycles):
            start, start_cpu = time.perf_counter(), time.thread_time()
            monitor.collect_metrics()
            client.get_run(run_id)  # the loop's check that the run still runs
            monitor.publish_metrics(monitor.aggregate_metrics())
            monitor.mlflow_logger.flush()
            wall.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
        client.set_terminated(run_id)
    w, c = statistics.median(wall), statistics.median(cpu)
    interval = monitor.sampling_interval
    print(
        f"one cycle: {w * 1000:.1f} ms wall, {c * 1000:.1f} ms CPU (median of {cycles}); "
        f"every {interval:g} s: {w / interval:.2%} of wall time, {c / interval:.2%} of CPU"
    )


if __name__ == "__main__":
    main()
