"""The checks of "One implementation for every row": every implementation enumerated afresh,
each row's run under it found by its parameters, the winner over seeds from the runs its table
links to, and each row's own best implementation."""

from __future__ import annotations

import itertools
import re

from verify.document import Section, run_ids
from verify.evidence import Evidence, apply, preset_of, recorded
from verify.forensics import SHOWN, numbers, same_run
from verify.original import ROWS, distance, mean
from verify.tally import NUM

ROWS_BY_PRESET = {preset: label for label, (preset, *_rest) in ROWS.items()}


INITS = ("as it stands", "normal", "uniform")


def implementations(ev: Evidence) -> list[dict[str, str]]:
    """The joint test's implementations, enumerated afresh: the initialisation of every network
    with a hidden layer, and for penalised rows scale, eq. 7's 1/2 (an L1 row), penalised
    biases and, where a penalised row's stopping watches something, what it watches."""
    penalised = [
        p for p, runs in ev.runs.items() if runs[0].params.get("regularizer.kind", "none") != "none"
    ]
    keys: dict[str, tuple] = {"model.init": INITS}
    if penalised:
        keys["regularizer.scale"] = ("mean", "sum")
        if any(ev.runs[p][0].params["regularizer.kind"] == "l1" for p in penalised):
            keys["regularizer.l1_half"] = ("False", "True")
        keys["regularizer.penalize_bias"] = ("False", "True")
        if any(
            ev.derived["length"]
            .get(p, {})
            .get("trainer.stopping", ev.runs[p][0].params["trainer.stopping"])
            != "none"
            for p in penalised
        ):
            keys["trainer.monitor"] = ("val_loss", "val_objective")
    return [dict(zip(keys, values)) for values in itertools.product(*keys.values())]


def row_params(ev: Evidence, preset: str, impl: dict[str, str], seed: str) -> dict[str, str]:
    """A row's parameters under an implementation: its own run's, its length rule, and the
    choices that apply to it: a parameter it does not have does not apply, nor does an
    initialisation without a hidden layer, nor what stopping watches without a penalty (the
    penalty is all that tells val_objective from val_loss)."""
    run = next(r for r in ev.runs[preset] if r.params["trainer.seed"] == seed)
    params = recorded({**run.params, **ev.derived["length"].get(preset, {})})
    unused = set()
    if params.get("model.hidden") == "[]":
        unused.add("model.init")
    if params.get("regularizer.kind", "none") == "none":
        unused.add("trainer.monitor")
    for key, value in impl.items():
        if key in params and key not in unused and value != "as it stands":
            params[key] = value
    return params


def impl_label(impl: dict[str, str]) -> str:
    return " ".join(
        "init as it stands" if v == "as it stands" else f"{k.rsplit('.', 1)[-1]}={v}"
        for k, v in impl.items()
    )


def joint(ev: Evidence, s: Section) -> None:
    t = ev.tally
    ev.derived["length"] = {}
    for label, f in ev.derived.get("findings", {}).items():
        best = apply({}, f["ranked"][0][0])  # a searched row keeps its best's length rule
        rule = {k: v for k, v in best.items() if k in ("trainer.stopping", "trainer.epochs")}
        ev.derived["length"][preset_of(label)] = rule
    presets = [p for p in (preset_of(lb) for lb in ROWS) if p in ev.runs]
    screened = []
    for impl in implementations(ev):
        distances = {}
        for preset in presets:
            run = ev.records.matching(row_params(ev, preset, impl, "0"), ev.runs[preset][0])
            if run is None:
                break
            distances[preset] = distance(ROWS_BY_PRESET[preset], run.accuracy, run.loss, run.stop)
        else:
            screened.append(
                (impl, distances, max(distances.values()), mean(list(distances.values())))
            )
    if not screened:
        t.unverified(s.title, "no implementation has a run for every row")
        return
    by_label = {impl_label(impl): (impl, dist, big, avg) for impl, dist, big, avg in screened}
    least = min(big for _, _, big, _ in screened)
    table = s.table("The best implementations")
    shown = []
    for row in table.rows if table else []:  # each row checked by its name: ties have no order
        where = f"{s.title}: {row['implementation']}"
        found = by_label.get(row["implementation"])
        t.word(where, row["implementation"], row["implementation"] if found else "-")
        if found is None:
            continue
        _, dist, big, avg = found
        for preset, d in dist.items():
            t.number(f"{where} {preset}", row[ROWS_BY_PRESET[preset]], d)
        t.number(f"{where} largest", row["largest"], big)
        t.number(f"{where} mean", row["mean"], avg)
        shown.append((big, avg))
    t.word(f"{s.title}: sorted by largest, then mean", str(shown == sorted(shown)), "True")
    if shown:  # the first shown is a best: no implementation's largest distance is smaller
        t.number(f"{s.title}: the smallest largest distance", f"{shown[0][0]:.6g}", least)
    seeds_table = s.table("The best implementation over seeds")
    winner_label = seeds_table.caption.rpartition("(")[2].rstrip(")") if seeds_table else "-"
    winner = by_label.get(winner_label, (None, {}, None, None))
    t.word(f"{s.title}: the winner is a best", str(winner[2] == least), "True")
    ev.derived["joint"] = {"winner": winner_label, "largest at seed 0": least}
    over = {}
    for row in seeds_table.rows if seeds_table and winner[0] else []:
        preset = preset_of(row["experiment"])
        where = f"{s.title}: {row['experiment']} over seeds"
        runs = [ev.records.run(i) for i in run_ids(row["runs"])]
        seeds = sorted(r.params["trainer.seed"] for r in runs if r)
        for run in runs:
            expected = row_params(ev, preset, winner[0], run.params["trainer.seed"])
            same_run(ev, f"{where}: run {run.run_id[:8]}", run.params, expected)
        t.word(f"{where} seeds", " ".join(seeds), " ".join(str(x) for x in ev.seeds))
        d = numbers(row["experiment"], runs)
        for key in SHOWN:
            t.number(f"{where} {key}", row[key], d[key])
        t.numbers(f"{where} stops", row["stop epochs"], d["stop epochs"])
        over[row["experiment"]] = d
    ev.derived["joint"]["over seeds"] = over

    def alone(experiment: str, named: str) -> tuple[float | None, str]:
        """The named implementation is one of the row's own best ones; its distance there and
        the rows it leaves at 1 or more."""
        preset = preset_of(experiment)
        found = by_label.get(named)
        best = min(dist[preset] for _, dist, _, _ in screened)
        t.word(
            f"{s.title}: {named} is {experiment}'s best",
            str(bool(found) and found[1][preset] == best),
            "True",
        )
        if not found:
            return None, "-"
        left = ", ".join(f"{ROWS_BY_PRESET[p]} ({d:.2f})" for p, d in found[1].items() if d >= 1)
        return found[1][preset], left or "none"

    table = s.table("Each row's own best implementation")
    for row in table.rows if table else []:
        where = f"{s.title}: {row['experiment']} alone"
        dist, left = alone(row["experiment"], row["its best implementation"])
        t.number(f"{where} distance", row["its distance"], dist)
        t.word(f"{where} leaves", row["rows it leaves at 1 or more"], left)

    def prefers(m: re.Match) -> None:
        dist, left = alone(m[1], m[2])
        t.number(f"{s.title}: {m[1]} distance", m[3], dist)
        t.word(f"{s.title}: {m[1]} leaves", m[4], left)

    def intro(m: re.Match) -> None:
        t.number(f"{s.title}: implementations", m[1], len(implementations(ev)))
        t.number(f"{s.title}: seeds", m[2], len(ev.seeds))

    ev.sentences(
        s,
        [
            (
                (
                    r"The original was one program, .* All (\d+) implementations were "
                    r"evaluated on every row at seed 0; the one whose largest distance is "
                    r"smallest was re-run over (\d+) seeds\."
                ),
                intro,
            ),
            (
                (
                    r"One implementation for every row \((.+?), each row keeping its own "
                    r"length rule\): (.*)"
                ),
                lambda m: joint_sentence(ev, m),
            ),
            (rf"(.+?) on its own prefers (.+?) \(distance ({NUM})\), which leaves (.+)\.", prefers),
        ],
    )


def joint_sentence(ev: Evidence, m: re.Match) -> None:
    t, j = ev.tally, ev.derived.get("joint", {})
    t.word("joint: winner", m[1], j.get("winner", "-"))
    over = j.get("over seeds", {})
    explains = all(d["distance"] < 1 for d in over.values())
    if m[2].startswith("it explains"):
        t.word("joint: explains every row", "yes", "yes" if explains else "no")
        return
    t.word("joint: explains every row", "no", "yes" if explains else "no")
    shown = re.findall(rf"(\d[\w. ,()]+?) at ({NUM}) \(sd ({NUM})\)", m[2])
    conflicts = {lb: d for lb, d in over.items() if d["distance"] >= 1}
    t.word(
        "joint: conflicting rows", " | ".join(x[0].strip() for x in shown), " | ".join(conflicts)
    )
    for name, dist, spread in shown:
        d = conflicts.get(name.strip(), {})
        t.number(f"joint: {name} distance", dist, d.get("distance"))
        t.number(f"joint: {name} sd", spread, d.get("distance (sd)"))
    seed0 = re.search(rf"at seed 0 its largest distance was ({NUM})", m[2])
    if seed0:
        t.number("joint: largest at seed 0", seed0[1], j["largest at seed 0"])
