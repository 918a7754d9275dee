"""A study without an explicit name is named after its settings, so a smoke sweep never blocks
the README's real one; an explicit name keeps refusing other settings (test_faults)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import optuna

from pipeline.config import ROOT
from pipeline.train import compose, training_overrides
from sweeps import settings, storage
from sweeps import study as st
from sweeps.__main__ import SWEEP_KEYS


def readme_sweep() -> list[str]:
    """The arguments of the first command of the README's Optuna section, as written."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Optuna sweeps", 1)[1]
    first = re.search(r"```sh\n(.*)\n", section).group(1)
    assert first.startswith("python -m sweeps "), first
    return first.split()[3:]


def settings_of(*args: str) -> settings.Settings:
    raw = compose(list(args), config_name="sweeps")
    return settings.settings_from(raw, training_overrides(args, SWEEP_KEYS))


def test_the_default_name_is_readable_and_names_the_fixed_settings(tmp_path: Path) -> None:
    where = f"study.storage=journal:{tmp_path}/s.journal"
    plain = settings_of("sweep=lr_activation", where)
    assert re.fullmatch(r"lr_activation-mnist-[0-9a-f]{6}", plain.name)
    # the budget, the workers and the sampler's seed are no settings of the trials
    assert settings_of("sweep=lr_activation", "n_trials=3", "workers=2", where).name == plain.name
    assert settings_of("sweep=lr_activation", "trainer.epochs=2", where).name != plain.name
    assert settings_of("sweep=lr_activation", "study.objective=val_accuracy", where).name != (
        plain.name
    )
    assert settings_of("sweep=lr_activation", "study.name=mine", where).name == "mine"


def test_a_smoke_sweep_then_the_readmes_sweep_are_two_studies(tmp_path: Path) -> None:
    where = [f"study.storage=journal:{tmp_path}/study.journal", "tracking=none"]
    smoke = ["sweep=lr_activation", "n_trials=4", "trainer.epochs=2", "data.max_train=3000"]
    out = subprocess.run(
        [sys.executable, "-m", "sweeps", *smoke, *where, f"hydra.run.dir={tmp_path}/hydra"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"#0 COMPLETE val_loss \d\.\d{4}  \|", out.stdout)  # the metric, named
    url = storage.open_storage(where[0].split("=", 1)[1])
    smoke_studies = set(optuna.get_all_study_names(url))
    assert len(smoke_studies) == 3  # one per activation (the space's groups), 4 trials each
    sizes = [len(optuna.load_study(study_name=n, storage=url).trials) for n in smoke_studies]
    assert sizes == [4, 4, 4]
    s = settings_of(*readme_sweep(), *where)
    opened = st.resume(s, settings.check(s).trainer.epochs)  # what the command does first
    assert {part.name for part, _ in opened}.isdisjoint(smoke_studies)
    assert all(not study.trials for _, study in opened)  # a new study, not a refusal
    assert set(optuna.get_all_study_names(url)) == smoke_studies | {p.name for p, _ in opened}
