"""Search spaces from ``conf/sweep/*.yaml``: parsed, every value checked before any trial, sampled.

A parameter is a Hydra override key: a value (``optimizer.lr``) or a config group
(``regularizer``). ``when: {regularizer: [l1, l2]}`` samples a parameter only if an earlier one
took one of those values, so lambda is never sampled for an unregularized trial. ``groups``
names categorical parameters whose every value gets its own sub-study and budget, so that a
comparison across them (which activation is best?) never rests on a group TPE starved.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from pipeline.config import ConfigError

TYPES = ("float", "int", "categorical")


class SweepError(ConfigError):
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

    def extremes(self) -> tuple[Any, ...]:
        """Every value a check must try: each choice, or both ends of a range (every rule on a
        number is an interval, so the ends stand for what lies between)."""
        if self.type == "categorical":
            return self.choices
        if self.type == "int":
            return (int(self.low), int(self.high))
        return (self.low, self.high)


def _number(where: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SweepError(f"{where}.{name}={value!r} is invalid: expected a finite number")
    return float(value)


STORABLE = (str, int, float, bool, type(None))  # what Optuna's storages keep as a choice


def parse(name: str, raw: Any) -> list[Param]:
    """Validate a space; every problem is a ``SweepError`` naming ``sweep.params.<key>``."""
    if not isinstance(raw, Mapping) or not raw:
        raise SweepError(
            f"sweep {name!r} has no params: list them under params: in conf/sweep/{name}.yaml"
        )
    params: list[Param] = []
    for key, spec in raw.items():
        where = f"sweep.params.{key}"
        if not isinstance(spec, Mapping):
            raise SweepError(f"{where} must be a mapping with type: and its settings")
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
            for c in choices:
                if not isinstance(c, STORABLE):
                    raise SweepError(
                        f"{where}.choices holds {c!r}: a choice must be a number, string, "
                        "boolean or null (Optuna stores it); for layer sizes sweep each "
                        "size (model.hidden.0) or name presets in conf/experiment/"
                    )
            param = Param(key, kind, choices=choices, when=when)
        else:
            low, high, log = spec.pop("low", None), spec.pop("high", None), spec.pop("log", False)
            if low is None or high is None:
                raise SweepError(f"{where} needs low and high")
            low, high = _number(where, "low", low), _number(where, "high", high)
            if kind == "int" and not (low.is_integer() and high.is_integer()):
                raise SweepError(f"{where}: low={low:g} and high={high:g} must be integers")
            if low > high:
                raise SweepError(f"{where}: low={low:g} > high={high:g}; swap them")
            if log and low <= 0:
                raise SweepError(f"{where}: low={low:g} must be > 0 with log: true")
            param = Param(key, kind, low, high, bool(log), when=when)
        if spec:
            raise SweepError(f"{where}: unknown setting(s) {sorted(spec)}")
        params.append(param)
    return params


def split_groups(params: Sequence[Param], groups: Sequence[str]) -> list[Param]:
    """The params sampled inside each group's sub-study; a group must be an unconditional
    categorical param of the space."""
    by_key = {p.key: p for p in params}
    for g in groups:
        p = by_key.get(g)
        if p is None or p.type != "categorical" or p.when:
            raise SweepError(
                f"sweep.groups names {g!r}: expected an unconditional categorical param of "
                f"the space ({', '.join(k for k, q in by_key.items() if q.type == 'categorical')})"
            )
    return [p for p in params if p.key not in groups]


def group_values(params: Sequence[Param], groups: Sequence[str]) -> list[dict[str, Any]]:
    """Every combination of the group params' choices (one sub-study each); [{}] without."""
    by_key = {p.key: p for p in params}
    return [dict(zip(groups, combo)) for combo in product(*(by_key[g].choices for g in groups))]


def corners(params: Sequence[Param], fixed: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every combination of every param's extreme values that the space can produce (a
    conditional param only where its condition holds): what ``check`` composes."""
    combos: list[dict[str, Any]] = [dict(fixed)]
    for p in params:
        grown = []
        for combo in combos:
            if all(combo.get(k) in allowed for k, allowed in p.when.items()):
                grown += [{**combo, p.key: v} for v in p.extremes()]
            else:
                grown.append(combo)
        combos = grown
    yield from combos


def sample(trial: Any, params: Sequence[Param], fixed: Mapping[str, Any]) -> dict[str, Any]:
    """One value per active parameter, in order, so ``when`` sees the values drawn before it
    (and the group's fixed values)."""
    values: dict[str, Any] = dict(fixed)
    for p in params:
        if all(values.get(k) in allowed for k, allowed in p.when.items()):
            values[p.key] = p.suggest(trial)
    return {k: v for k, v in values.items() if k not in fixed}


def as_overrides(values: Mapping[str, Any]) -> list[str]:
    return [f"{key}={value}" for key, value in values.items()]
