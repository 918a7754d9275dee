"""The forensic search finds a true cause, and tuning answers per experiment, honestly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import fit, train
from sweeps import forensics, jobs, tuning
from sweeps.original import Target, borrowed_length, verdict, welch

BASE = ["data.max_train=1000", "data.max_test=300", "trainer.progress=false"]


def test_the_search_finds_a_planted_cause(tmp_path: Path, store: str) -> None:
    """An "original" made by the core itself under a known non-default combination (lambda
    scaled by the batch, and exactly four epochs): the search must rank that combination first
    among the 60 it tries, and reproduce the row (distance under 1)."""
    base = [*BASE, f"tracking.uri={store}"]
    planted_cfg = train.config(
        [
            *base,
            "experiment=l2",
            "regularizer.scale=sum",
            "trainer.stopping=none",
            "trainer.epochs=4",
        ]
    )
    planted_cfg.trainer.threads = 1  # as the search's two workers run
    result = fit.train(planted_cfg, train.load_data(planted_cfg))
    target = Target(result.test_accuracy, result.test_loss, 4)
    o = forensics.options({"seeds": 1, "storage": f"journal:{tmp_path}/studies.journal"})
    s = forensics.row_settings("l2", base, o, store, target)
    assert s.sampler == "grid" and s.n_trials == 60
    found = forensics.search("l2", s, 1, None)
    by_choices = found.ranking.set_index("choices")["distance"]
    planted = by_choices["stopping=none ep=4 scale=sum"]
    assert planted == by_choices.min() and planted < 0.05  # the very same computation ranks first
    # (penalising the biases too can tie: lambda / 128 on 10 biases for 4 epochs changes
    # nothing the metrics show)
    as_it_stands = found.ranking[found.ranking["choices"] == "as it stands"]
    assert float(as_it_stands["distance"].iloc[0]) > 1  # the search had something to find
    assert len(found.trials) == 60  # every combination, each once


def test_distance_and_bound() -> None:
    t = Target(0.9579, 0.155, 5)
    assert t.distance(0.9579, 0.155, 5) == 0
    # 0.5 point, 10% of the loss and 2 epochs are one tolerance each
    assert t.distance(0.9629, 0.155 * 1.1, 7) == pytest.approx(1.0)
    assert t.errors(0.9579, 0.155, None) == {"accuracy": 0, "loss": 0}
    assert t.lower_bound(5) == 0 and t.lower_bound(9) == pytest.approx(2 / np.sqrt(3))
    assert Target(0.9518, 0.1649, None).lower_bound(50) == 0  # no stop epoch: no bound


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ([97.40, 97.43, 97.44], 97.45, "within the seed spread"),
        ([95.96, 95.99, 96.01], 95.79, "better"),  # the sd is tiny: 0.2 points is outside
        ([89.52, 89.62, 89.73], 95.18, "worse"),
        ([97.5], 97.5, "no verdict"),  # one seed: no spread to judge by
    ],
)
def test_the_verdict_rule(ours: list, theirs: float, expected: str) -> None:
    assert verdict(np.array(ours), theirs) == expected


def test_welch_needs_two_runs_a_side_and_tells_noise_from_gain() -> None:
    assert welch(np.array([97.5]), np.array([97.4, 97.5])).verdict == "too few runs"
    noise = welch(np.array([97.40, 97.60, 97.50]), np.array([97.45, 97.55, 97.40]))
    assert noise.verdict == "no clear difference" and noise.p > 0.05
    gain = welch(np.array([97.9, 97.95, 97.92]), np.array([97.40, 97.45, 97.42]))
    assert gain.verdict == "better" and gain.p < 0.01


def tuning_run(tmp: Path, store: str, presets: list[str], low: float, high: float):
    """The tuning of ``presets`` over a learning rate range, two complete trials each (at
    most three), against hand-picked runs of two seeds."""
    base = [*BASE, "trainer.epochs=3", f"tracking.uri={store}"]
    o = tuning.options({"min_complete": 2, "trials": 3, "pruner": "none"})
    s = tuning.study_settings(base, o, 2, presets)
    lr = {"type": "float", "low": low, "high": high, "log": True}
    s = type(s)(
        **{
            **s.__dict__,
            "storage": f"journal:{tmp}/studies.journal",
            "params": {**s.params, "optimizer.lr": lr},
        }
    )
    hand = {
        (p, seed): jobs.Job((*base, f"experiment={p}", f"trainer.seed={seed}"))
        for p in presets
        for seed in (0, 1)
    }
    hand_picked = jobs.collect(jobs.ensure(hand, 2)[0], store)[0]
    return tuning.tune(s, hand_picked, 2, None).best.set_index("experiment")


def test_every_experiment_reaches_its_minimum_of_complete_trials(
    tmp_path: Path, store: str
) -> None:
    best = tuning_run(tmp_path, store, ["sigmoid", "relu"], 0.05, 0.5)
    assert list(best.index) == ["sigmoid", "relu"]
    assert (best["complete"] >= 2).all() and (best["trials"] <= 3).all()
    assert best["tuned acc % (mean)"].notna().all()  # both retrained over the seeds ...
    assert best["verdict"].isin(["better", "worse", "no clear difference"]).all()  # ... judged


def test_a_group_that_never_learned_has_no_best(tmp_path: Path, store: str) -> None:
    """A learning rate range where sigmoid can only saturate: its trials complete at chance,
    are labelled so, and none is called its best."""
    from sweeps.report.sections.tuning import sentence

    best = tuning_run(tmp_path, store, ["sigmoid"], 300.0, 1000.0)
    row = best.reset_index().iloc[0]
    assert row["complete"] >= 2 and row["never learned"] == row["complete"]
    assert pd.isna(row.get("tuned acc % (mean)", np.nan))
    assert "no trial learned anything" in sentence(row)


def test_a_row_without_a_stop_epoch_borrows_the_length_of_the_row_it_says_it_mirrors() -> None:
    """L1 gives no stop epoch but is trained with "everything else the same" as L2 (5 epochs):
    its fixed-length hypothesis trains 5 epochs, while its distance never counts epochs."""
    l1 = Target.of("l1")
    assert (l1.stop_epoch, l1.fixed_epochs) == (None, 5)
    assert l1.distance(0.9518, 0.1649, 50) == 0  # no stop epoch in the distance
    params = forensics.space_for(train.config(["experiment=l1"]), l1)
    assert params["trainer.stopping"]["choices"][0] == "none"  # the cheap ones first
    assert params["trainer.epochs"]["choices"] == [5]
    assert "everything else the same" in borrowed_length("l1")
    assert borrowed_length("l2") == "" and Target.of("relu").fixed_epochs == 17
    no_hint = forensics.space_for(train.config(["experiment=l1"]), Target(0.95, 0.16, None))
    assert "trainer.epochs" not in no_hint and "none" not in no_hint["trainer.stopping"]["choices"]
