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
        ("model.init=xavier", "model.init='xavier' is invalid: expected one of glorot, he"),
        ("regularizer.l1_half=maybe", "regularizer.l1_half: Value 'maybe' is not a valid bool"),
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
