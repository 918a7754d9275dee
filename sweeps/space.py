"""Search spaces from ``conf/sweep/*.yaml``: parsed, checked before any trial, sampled.

A parameter is a Hydra override key: a value (``optimizer.lr``) or a config group
(``regularizer``). ``when: {regularizer: [l1, l2]}`` samples a parameter only if an earlier one
took one of those values, so lambda is never sampled for an unregularized trial.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TYPES = ("float", "int", "categorical")


class SweepError(ValueError):
    """The sweep's search space or settings are wrong; the message says which key and why."""


@dataclass(frozen=True)
class Param:
    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def suggest(self, trial: Any) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def example(self) -> Any:
        """A legal value, to check that the key exists before any trial runs."""
        return self.choices[0] if self.type == "categorical" else self.low


def parse(name: str, raw: Mapping[str, Mapping[str, Any]]) -> list[Param]:
    """Validate a space; every problem is a ``SweepError`` naming ``sweep.params.<key>``."""
    if not raw:
        raise SweepError(f"sweep {name!r} has no params: add some under params: in its yaml")
    params: list[Param] = []
    for key, spec in raw.items():
        where = f"sweep.params.{key}"
        spec = dict(spec)
        kind = spec.pop("type", None)
        if kind not in TYPES:
            raise SweepError(f"{where}.type={kind!r} is invalid: expected one of {TYPES}")
        when = {k: tuple(v) for k, v in dict(spec.pop("when", None) or {}).items()}
        for other in when:
            if other not in {p.key for p in params}:
                raise SweepError(f"{where}.when names {other!r}, which is not an earlier param")
        if kind == "categorical":
            choices = tuple(spec.pop("choices", None) or ())
            if not choices:
                raise SweepError(f"{where}.choices is empty: list the values to try")
            param = Param(key, kind, choices=choices, when=when)
        else:
            low, high, log = spec.pop("low", None), spec.pop("high", None), spec.pop("log", False)
            if low is None or high is None:
                raise SweepError(f"{where} needs low and high")
            if low > high:
                raise SweepError(f"{where}: low={low} > high={high}; swap them")
            if log and low <= 0:
                raise SweepError(f"{where}: low={low} must be > 0 with log: true")
            param = Param(key, kind, float(low), float(high), bool(log), when=when)
        if spec:
            raise SweepError(f"{where}: unknown setting(s) {sorted(spec)}")
        params.append(param)
    return params


def sample(trial: Any, params: Sequence[Param]) -> dict[str, Any]:
    """One value per active parameter, in order, so ``when`` sees the values drawn before it."""
    values: dict[str, Any] = {}
    for p in params:
        if all(values.get(k) in allowed for k, allowed in p.when.items()):
            values[p.key] = p.suggest(trial)
    return values


def as_overrides(values: Mapping[str, Any]) -> list[str]:
    return [f"{key}={value}" for key, value in values.items()]
