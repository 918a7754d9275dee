"""The checks of "Where we differ from the original, and why": each searched row's best
combinations over seeds (from the runs its table links to), the search's counts (from its
Optuna study), and which choices the evidence pins (from the study's trials)."""

from __future__ import annotations

import itertools
import math
import re

from optuna.trial import TrialState

from verify.document import Section, Table, run_ids
from verify.evidence import Evidence, apply, label_from, preset_of, tokens
from verify.original import ROWS, distance, errors, mean, sd
from verify.tally import NUM

SHOWN = (  # what a table of a group over seeds shows of it
    "seeds",
    "test acc % (mean)",
    "test acc % (sd)",
    "test loss (mean)",
    "distance",
    "distance (sd)",
)


def over_seeds(ev: Evidence, label: str, choices: str, cell: str, where: str) -> dict:
    """A combination's runs, from the links of its row: each must be the row's preset with
    exactly these choices (and no other change), a seed of the report; then their numbers."""
    preset = preset_of(label)
    reference = {r.params["trainer.seed"]: r for r in ev.runs[preset]}
    runs = [ev.records.run(i) for i in run_ids(cell)]
    for run in runs:
        if run is None:
            ev.tally.word(where, cell, "runs of this store")
            return {}
        seed = run.params.get("trainer.seed")
        expected = apply(reference[seed].params, choices) if seed in reference else {}
        same_run(ev, f"{where}: run {run.run_id[:8]}", run.params, expected)
    return numbers(label, runs) if runs else {}


def numbers(label: str, runs: list) -> dict:
    """A group of runs as the report's tables show it: means, spreads, the distance of the
    means to the original's row and the spread of each run's own distance."""
    accs, losses, stops = [r.accuracy for r in runs], [r.loss for r in runs], [r.stop for r in runs]
    each = [distance(label, a, b, c) for a, b, c in zip(accs, losses, stops)]
    return {
        "runs": runs,
        "seeds": len(runs),
        "test acc % (mean)": mean(accs),
        "test acc % (sd)": sd(accs),
        "test loss (mean)": mean(losses),
        "stop epochs": stops,
        "distance": distance(label, mean(accs), mean(losses), mean(stops)),
        "distance (sd)": sd(each),
    }


def same_run(ev: Evidence, where: str, params: dict[str, str], expected: dict[str, str]) -> None:
    """A linked run is what its row says: its parameters are exactly the expected ones."""
    differ = sorted(k for k in params.keys() | expected.keys() if params.get(k) != expected.get(k))
    shown = ", ".join(f"{k}={params.get(k, '-')}" for k in differ)
    wanted = ", ".join(f"{k}={expected.get(k, '-')}" for k in differ)
    ev.tally.word(f"{where} parameters", shown or "as its row says", wanted or "as its row says")


def ranking(ev: Evidence, label: str, table: Table) -> list[tuple[str, dict]]:
    """The closest combinations: every number of every row, and their order."""
    t, out = ev.tally, []
    for row in table.rows:
        where = f"{label}: {row['choices']}"
        if row["choices"] == "the original":
            _, acc, loss, stop = ROWS[label]
            t.number(f"{where} accuracy", row["test acc % (mean)"], acc)
            t.number(f"{where} loss", row["test loss (mean)"], loss)
            t.word(f"{where} stop", row["stop epochs"], str(stop) if stop else "-")
            continue
        d = over_seeds(ev, label, row["choices"], row["runs"], where)
        if not d:
            continue
        for key in SHOWN:
            t.number(f"{where} {key}", row[key], d[key])
        t.numbers(f"{where} stops", row["stop epochs"], d["stop epochs"])
        out.append((row["choices"], d))
    shown = [c for c, _ in out]
    t.word(
        f"{label}: the order",
        " | ".join(shown),
        " | ".join(c for c, _ in sorted(out, key=lambda cd: cd[1]["distance"])),
    )
    return out


def space_size(space: dict) -> int:
    """How many distinct combinations a stored search space has, its ``when`` conditions
    applied (a key whose condition fails is absent, so its values do not multiply)."""
    keys, seen = list(space), set()
    for values in itertools.product(*(space[k]["choices"] for k in keys)):
        active: dict = {}
        for k, v in zip(keys, values):
            if all(active.get(c) in allowed for c, allowed in space[k].get("when", {}).items()):
                active[k] = v
        seen.add(tuple(sorted((k, repr(v)) for k, v in active.items())))
    return len(seen)


def differences(ev: Evidence, s: Section) -> None:
    t = ev.tally
    ev.derived["findings"] = {}
    for table in s.tables:
        if not table.caption.endswith(": the closest combinations over seeds"):
            continue
        table.read = True
        label = table.caption.removesuffix(": the closest combinations over seeds")
        preset = preset_of(label)
        study_name, storage = ev.studies.get(f"forensics {preset}", (None, None))
        if study_name is None:
            t.unverified(s.title, f"no study for {label} in the setup section")
            continue
        study = ev.records.study(study_name, storage)
        ranked = ranking(ev, label, table)
        stands = ev.runs[preset][0].params
        trials = [
            (tr, label_from(tr.params, stands))
            for tr in study.get_trials(deepcopy=False)
            if tr.state in (TrialState.COMPLETE, TrialState.PRUNED)
        ]
        finding = {"ranked": ranked, "trials": trials, "study": study}
        ev.derived["findings"][label] = finding
        pins = s.table(f"{label}: which choices the evidence pins")
        if pins is not None and ranked:
            finding["pins"] = identification(ev, label, ranked, trials, stands, pins)

    def counts(m: re.Match) -> None:
        f = ev.derived["findings"].get(m[1])
        if f is None:
            t.word(f"{s.title}: {m[1]}", m[1], "a searched row")
            return
        states = [tr.state for tr, _ in f["trials"]]
        size = space_size(f["study"].user_attrs["settings"]["space"])
        t.number(f"{m[1]}: tried", m[2], len(states))
        t.number(f"{m[1]}: combinations", m[3], size)
        if m[4]:
            t.number(f"{m[1]}: sample", m[4], len(states))
        t.number(f"{m[1]}: pruned", m[5], states.count(TrialState.PRUNED))
        t.number(f"{m[1]}: complete", m[6], states.count(TrialState.COMPLETE))
        if m[7]:
            borrowed(ev, m[7])

    def best(m: re.Match) -> None:
        found = [
            lb
            for lb, f in ev.derived["findings"].items()
            if f["ranked"] and f["ranked"][0][0] == m["choices"]
        ]
        if not found:
            t.word(f"{s.title}: best", m["choices"], "the first row of its ranking")
            return
        label = found[0]
        ranked = dict(ev.derived["findings"][label]["ranked"])
        d = ranked[m["choices"]]
        t.number(f"{label}: best accuracy", m["acc"], d["test acc % (mean)"])
        t.number(f"{label}: best loss", m["loss"], d["test loss (mean)"])
        t.number(f"{label}: best seeds", m["seeds"], d["seeds"])
        t.numbers(f"{label}: best stops", m["stops"], d["stop epochs"])
        t.number(f"{label}: best distance", m["distance"], d["distance"])
        stands = ranked.get("as it stands", {}).get("distance")
        t.number(f"{label}: as it stands", m["base"], stands)
        if m["choices"] == "as it stands":
            verdict = "No tested combination comes closer than the row as it stands: the "
            verdict += "difference lies outside these choices"
        elif d["distance"] < 1:
            verdict = "It reproduces the original's row"
        else:
            verdict = "It does not reproduce the original's row"
        t.word(f"{label}: verdict", m["verdict"], verdict)
        off = errors(label, d["test acc % (mean)"], d["test loss (mean)"], mean(d["stop epochs"]))
        off = {k: v for k, v in off.items() if v > 1}
        shown = re.findall(rf"([a-z ]+) \(({NUM}) tolerances off\)", m["off"] or "")
        t.word(f"{label}: still off", ", ".join(k.strip() for k, _ in shown), ", ".join(off))
        for key, value in shown:
            t.number(f"{label}: {key.strip()} off", value, off.get(key.strip()))
        if m["pins"] is not None:
            pinned(ev, label, m["pins"])

    ev.sentences(
        s,
        [
            (
                (
                    r"Each row outside the seed spread is searched over .*accuracy within "
                    r"0\.5 point, loss within 10%, stop epoch within max\(2, 20%\) epochs "
                    r"where the original gives one\. Under 1, every number is within its "
                    r"tolerance and the row is reproduced\."
                ),
                lambda m: None,
            ),
            (r"A choice of the best combination is identified when .*", lambda m: None),
            (
                (
                    r"(.+?): (\d+) of its (\d+) combinations tried \((?:every combination|a "
                    r"seeded random sample of (\d+) distinct ones)\); (\d+) stopped early as "
                    r"hopeless, (\d+) ran out\.(?: (The original gives no stop epoch .*))?"
                ),
                counts,
            ),
            (
                rf"Best: (?P<choices>.+?) gives (?P<acc>{NUM})% and loss (?P<loss>{NUM}) over "
                rf"(?P<seeds>\d+) seed\(s\), stopping at epochs (?P<stops>[\d / ]+), distance "
                rf"(?P<distance>{NUM}) \(as it stands: (?P<base>{NUM})\)\. (?P<verdict>It "
                r"reproduces the original's row|It does not reproduce the original's row|No "
                r"tested combination comes closer than the row as it stands: the difference lies "
                rf"outside these choices)(?:; still off: (?P<off>.+?))?\.(?: The evidence pins "
                r"(?P<pins>.*))?",
                best,
            ),
        ],
    )


def borrowed(ev: Evidence, text: str) -> None:
    """'The original gives no stop epoch for 5.2 L1 but trains it with "..." : its fixed-length
    runs borrow 5.1 L2's 5 epochs.' The row it borrows from, and that row's stop epoch."""
    m = re.fullmatch(
        (
            r"The original gives no stop epoch for (.+?) but trains it with \"(.+)\": its "
            r"fixed-length runs borrow (.+?)'s (\d+) epochs\."
        ),
        text,
    )
    if m is None:
        ev.tally.unverified("borrowed length", text)
        return
    row = next((lb for lb in ROWS if lb.startswith(m[1])), None)
    like = next((lb for lb in ROWS if lb.startswith(m[3])), None)
    ev.tally.word(f"{m[1]}: gives no stop epoch", str(ROWS[row][3] if row else "?"), "None")
    ev.tally.number(f"{m[1]}: borrowed epochs", m[4], ROWS[like][3] if like else None)


def identification(
    ev: Evidence, label: str, ranked: list, trials: list, stands: dict, table: Table
) -> dict[str, dict]:
    """Re-derive, per choice of the best combination, the closest combination with that
    choice changed and whether the margin beats the seed spread."""
    t = ev.tally
    best_choices, best = ranked[0]
    seeded = {frozenset(tokens(c)): d["distance"] for c, d in ranked}
    mine = [tr for tr, lab in trials if lab == tokens(best_choices)]
    if not mine:
        t.word(f"{label}: the best's trial", best_choices, "a trial of the study")
        return {}
    chosen = mine[0].params
    derived = {}
    for key, value in chosen.items():
        if key == "trainer.epochs":
            continue
        others = [(tr, lab) for tr, lab in trials if tr.params.get(key) != value]
        done = [
            (seeded.get(frozenset(lab), tr.value), tr.params.get(key))
            for tr, lab in others
            if tr.state == TrialState.COMPLETE
        ]
        closest, other = min(done, key=lambda dv: dv[0]) if done else (math.nan, None)
        margin = closest - best["distance"]
        pruned = any(tr.state == TrialState.PRUNED for tr, _ in others)
        if done:
            verdict = "yes" if margin > best["distance (sd)"] else "no"
        else:
            verdict = "yes" if pruned else "not tested"
        derived[key.rsplit(".", 1)[-1]] = {
            "best": str(value),
            "as it stands": stands.get(key, "-"),
            "closest other": str(other) if done else ("pruned" if pruned else "-"),
            "its distance": closest,
            "best distance": best["distance"],
            "margin": margin,
            "seed spread": best["distance (sd)"],
            "identified": verdict,
            "key": key,
            "epochs": chosen.get("trainer.epochs"),
        }
    for row in table.rows:
        d, where = derived.get(row["choice"]), f"{label}: identification of {row['choice']}"
        if d is None:
            t.word(where, row["choice"], "a choice of the best combination")
            continue
        for key in ("best", "as it stands", "closest other", "identified"):
            t.word(f"{where} {key}", row[key], d[key])
        for key in ("its distance", "best distance", "margin", "seed spread"):
            t.number(f"{where} {key}", row[key], d[key])
    t.word(
        f"{label}: choices identified", " ".join(r["choice"] for r in table.rows), " ".join(derived)
    )
    return derived


def named(pins: dict[str, dict]) -> tuple[list[str], list[str]]:
    """The pinned choices that change the row (``stopping=none ep=5``) and the open ones."""
    changed, open_ = [], []
    for choice, d in pins.items():
        if d["identified"] == "yes" and d["best"] != d["as it stands"]:
            text = f"{choice}={d['best']}"
            if d["key"] == "trainer.stopping" and d["epochs"] is not None:
                text += f" ep={d['epochs']}"
            changed.append(text)
        elif d["identified"] == "no" or d["identified"] == "not tested":
            open_.append((choice, d))
    return changed, open_


def pinned(ev: Evidence, label: str, text: str) -> None:
    """'stopping=none ep=5 scale=sum; init: not identified, uniform and glorot within 0.008.'"""
    pins = ev.derived["findings"][label].get("pins", {})
    changed, open_ = named(pins)
    head, _, rest = text.rstrip(".").partition("; ")
    ev.tally.word(
        f"{label}: pinned",
        " ".join(sorted(tokens(head.replace("none of its changes", "")))),
        " ".join(sorted(" ".join(changed).split())),
    )
    open_shown = [p for p in rest.split("; ") if p]
    ev.tally.number(f"{label}: open choices", str(len(open_shown)), len(open_))
    for part, (choice, d) in zip(open_shown, open_):
        m = re.fullmatch(
            rf"(\w+): not identified, (\S+) and (\S+) within ({NUM})|(\w+): not tested", part
        )
        if m is None:
            ev.tally.unverified(f"{label}: open choice", part)
            continue
        ev.tally.word(f"{label}: open choice", m[1] or m[5], choice)
        if m[1]:
            ev.tally.word(f"{label}: {choice} best", m[2], d["best"])
            ev.tally.word(f"{label}: {choice} other", m[3], d["closest other"])
            ev.tally.number(f"{label}: {choice} margin", m[4], abs(d["margin"]))
