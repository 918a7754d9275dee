"""Hydra composition: presets carry the report's hyperparameters; bad values are refused."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError

REPORT = {  # preset: (hidden, activation, optimizer, lr, gamma, regularizer, lambda)
    "softmax": ([], "tanh", "sgd", 0.05, 0.0, "none", 0.0),
    "momentum": ([128], "tanh", "momentum", 0.1, 0.9, "none", 0.0),
    "l2": ([128], "tanh", "momentum", 0.05, 0.9, "l2", 0.01),
    "l1": ([128], "tanh", "momentum", 0.05, 0.9, "l1", 0.01),
    "sigmoid": ([128], "sigmoid", "momentum", 0.5, 0.9, "none", 0.0),
    "relu": ([128], "relu", "momentum", 0.1, 0.9, "none", 0.0),
}


@pytest.mark.parametrize("preset", REPORT)
def test_presets_match_the_report(make_config, preset: str) -> None:
    cfg = make_config(f"experiment={preset}")
    got = (
        cfg.model.hidden,
        cfg.model.activation,
        cfg.optimizer.name,
        cfg.optimizer.lr,
        cfg.optimizer.gamma,
        cfg.regularizer.kind,
        cfg.regularizer.lam,
    )
    assert got == REPORT[preset]
    assert cfg.preset == preset
    assert (cfg.trainer.batch_size, cfg.trainer.patience, cfg.trainer.epochs) == (128, 3, 100)


def test_overrides_apply_on_top_of_a_preset(make_config) -> None:
    cfg = make_config(
        "experiment=relu",
        "optimizer.lr=0.05",
        "regularizer=l2",
        "regularizer.lam=1e-3",
        "model.hidden=[64,32]",
    )
    assert (cfg.optimizer.lr, cfg.regularizer.kind, cfg.regularizer.lam) == (0.05, "l2", 1e-3)
    assert cfg.model.hidden == [64, 32] and cfg.model.activation == "relu"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.activation=softplus", "model.activation='softplus' is invalid: expected one of"),
        ("optimizer.lr=0", "optimizer.lr=0.0 is invalid: expected a finite number > 0"),
        ("optimizer.lr=-1", "optimizer.lr=-1.0 is invalid"),
        ("regularizer.lam=-0.1", "regularizer.lam=-0.1 is invalid: expected a finite number >= 0"),
        ("optimizer.gamma=1", "optimizer.gamma=1.0 is invalid: expected a number in [0, 1)"),
        ("optimizer.gamma=-0.5", "optimizer.gamma=-0.5 is invalid"),
        ("trainer.batch_size=0", "trainer.batch_size=0 is invalid: expected an integer >= 1"),
        ("trainer.patience=0", "trainer.patience=0 is invalid"),
        ("model.hidden=[128,0]", "model.hidden=[128, 0] is invalid"),
        ("trainer.dtype=float16", "trainer.dtype='float16' is invalid"),
        ("model.init=zeros", "model.init='zeros' is invalid with hidden layers"),
        ("regularizer.scale=avg", "regularizer.scale='avg' is invalid: expected one of mean, sum"),
        ("trainer.stopping=never", "trainer.stopping='never' is invalid: expected one of rises"),
        ("trainer.monitor=train_loss", "trainer.monitor='train_loss' is invalid"),
        ("trainer.seed=-1", "trainer.seed=-1 is invalid: expected an integer >= 0"),
        ("regularizer.lam=inf", "regularizer.lam=inf is invalid: expected a finite number"),
        ("optimizer.lr=nan", "optimizer.lr=nan is invalid"),
        ("tracking.experiment=", "tracking.experiment='' is invalid: expected a non-empty"),
        ("tracking.stale_after=5", "tracking.stale_after=5.0 is invalid: expected seconds >= 10"),
        ("model.init=xavier", "model.init='xavier' is invalid: expected one of glorot, he"),
        ("regularizer.l1_half=maybe", "regularizer.l1_half='maybe' is invalid: expected true or"),
        (
            "optimizer.lr=fast",
            "optimizer.lr: Value 'fast' of type 'str' could not be converted to Float",
        ),
    ],
)
def test_invalid_values_name_key_value_and_rule(make_config, override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(override)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_training_hash_ignores_tracking_only(make_config) -> None:
    base = make_config("experiment=relu").training_hash()
    assert (
        make_config(
            "experiment=relu", "tracking.experiment=other", "trainer.progress=false"
        ).training_hash()
        == base
    )
    assert make_config("experiment=relu", "trainer.seed=1").training_hash() != base


def test_a_scalar_hidden_size_is_one_layer(make_config) -> None:
    assert make_config("model.hidden=64").model.hidden == [64]
    cfg = make_config("experiment=relu", "model.hidden=64")  # the rest of the config stays
    assert (cfg.model.hidden, cfg.model.activation, cfg.preset) == ([64], "relu", "relu")
    assert make_config("model=softmax", "model.hidden=[]").model.hidden == []


def test_a_network_larger_than_memory_is_refused(make_config, small_mnist) -> None:
    from pipeline import fit

    cfg = make_config("model.hidden=[100000000]", "tracking=none")
    with pytest.raises(ConfigError, match=r"model.hidden=\[100000000\] needs about \d+ GiB"):
        fit.train(cfg, small_mnist)


def test_a_split_that_leaves_nothing_to_train_on_is_refused(make_config) -> None:
    from pipeline.data import load

    cfg = make_config("data.max_train=3000", "data.val_fraction=0.9999")
    with pytest.raises(ConfigError, match="leaves 0 for training and 3000 for validation"):
        load(cfg.data)


def test_relative_paths_are_taken_from_the_repository_root(monkeypatch, tmp_path) -> None:
    from pipeline.config import ROOT, resolve_path

    monkeypatch.chdir(tmp_path)  # wherever Hydra's working directory is
    assert resolve_path("data/mnist") == ROOT / "data" / "mnist"
    assert resolve_path(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_path("~/store") == tmp_path / "store"


def test_settings_leave_out_bookkeeping_and_keys_without_effect() -> None:
    from pipeline.config import (
        ModelConfig,
        OptimizerConfig,
        RegularizerConfig,
        TrainConfig,
        TrainerConfig,
    )

    softmax = TrainConfig(
        model=ModelConfig(hidden=[]),
        optimizer=OptimizerConfig("sgd"),
        trainer=TrainerConfig(stopping="none"),
    ).settings()
    for key in ("model.activation", "optimizer.gamma", "trainer.patience", "trainer.monitor"):
        assert key not in softmax
    assert not [k for k in softmax if k.startswith("regularizer.") and k != "regularizer.kind"]
    assert not [k for k in softmax if k.startswith(("tracking.", "data.files", "data.sha256"))]
    for key in ("preset", "data.dir", "trainer.progress", "trainer.threads"):
        assert key not in softmax
    assert {"model.init", "optimizer.lr", "trainer.stopping", "data.max_train"} <= softmax.keys()
    l1 = TrainConfig(regularizer=RegularizerConfig("l1", 0.1)).settings()
    assert {"model.activation", "optimizer.gamma", "trainer.patience", "trainer.monitor"} <= set(l1)
    assert {"regularizer.lam", "regularizer.scale", "regularizer.l1_half"} <= set(l1)
    l2 = TrainConfig(regularizer=RegularizerConfig("l2", 0.1)).settings()
    assert "regularizer.l1_half" not in l2 and "regularizer.penalize_bias" in l2


def test_training_hash_is_every_computing_key_and_only_those() -> None:
    import hashlib
    import json

    from pipeline.config import TrainConfig

    cfg = TrainConfig()
    keys = {k: v for k, v in cfg.flat().items() if not k.startswith("tracking.")}
    del keys["trainer.progress"], keys["trainer.threads"]
    digest = hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]
    assert cfg.training_hash() == digest
    cfg.trainer.threads, cfg.trainer.progress, cfg.tracking.experiment = 4, False, "x"
    assert cfg.training_hash() == digest
    cfg.trainer.seed = 7
    assert cfg.training_hash() != digest
    assert cfg.training_hash(without=("trainer.seed",)) == TrainConfig().training_hash(
        without=("trainer.seed",)
    )


def test_flatten_dotted_keys_keep_lists_as_values() -> None:
    from pipeline.config import flatten

    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": "x",
    }


def test_a_config_error_without_a_key_names_the_config() -> None:
    from omegaconf import OmegaConf

    from pipeline.config import to_config

    with pytest.raises(ConfigError) as err:
        to_config(OmegaConf.create({"model": 5}))
    assert str(err.value) == "config: Merge error: int is not a subclass of ModelConfig. value: 5"


def test_the_whole_message_of_a_broken_rule(make_config) -> None:
    with pytest.raises(ConfigError) as err:
        make_config("data.max_train=9")
    assert str(err.value) == "data.max_train=9 is invalid: expected null or an integer >= 10"
