"""mutmut's results (``mutants/**/*.meta``) as a short Markdown summary, per group.

    python -m tools.mutation.summary [--out mutants/summary.md]

Per group: mutants, killed, timeout, survived, no tests, score ((killed + timeout) / mutants)
and wall time; then every survivor as ``file:line``, its function and the mutation (old -> new).
A mutant belongs to the first ``[[tool.mutation.groups]]`` entry whose glob matches its name.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import fnmatch
import json
import os
import re
import subprocess
import sys
from collections import Counter
from importlib import metadata
from pathlib import Path

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped"}
STATUS |= {36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout"}
STATUS |= {None: "not checked", 37: "caught by type check", -11: "segfault", -9: "segfault"}
COLUMNS = ("killed", "timeout", "survived", "no tests")


def status(exit_code: int | None) -> str:
    return STATUS.get(exit_code, "suspicious")


def group_of(mutant: str, entries: list[dict]) -> str | None:
    for entry in entries:
        if any(fnmatch.fnmatchcase(mutant, pattern) for pattern in entry["mutants"]):
            return entry["name"]
    return None


def results(root: Path) -> dict[str, tuple[str, int | None]]:
    """mutant name -> (source path, exit code) for every mutant mutmut made."""
    found = {}
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        source = meta.relative_to(root / "mutants").with_suffix("").as_posix()
        for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            found[key] = (source, code)
    return found


def function_of(mutant: str) -> tuple[str | None, str]:
    """``pipeline.fit.xǁEpochsǁrun__mutmut_3`` -> ("Epochs", "run")."""
    mangled = mutant.rpartition(".")[2].split("__mutmut_")[0]
    if mangled.startswith("xǁ"):
        _, cls, name = mangled.split("ǁ")
        return cls, name
    return None, mangled.removeprefix("x_")


def def_line(source: str, cls: str | None, name: str) -> int:
    tree = ast.parse(source)
    body = tree.body
    if cls:
        body = next(n.body for n in body if isinstance(n, ast.ClassDef) and n.name == cls)
    return next(
        n.lineno
        for n in body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name
    )


def describe(root: Path, mutant: str, path: str) -> tuple[int | None, str]:
    """The mutated line in the source file and the change, from mutmut's diff."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = os.getcwd()
    os.chdir(root)
    try:
        diff = get_diff_for_mutant(mutant, path=path)
    finally:
        os.chdir(cwd)
    lines = diff.splitlines()
    old = [line[1:].strip() for line in lines[2:] if line.startswith("-")]
    new = [line[1:].strip() for line in lines[2:] if line.startswith("+")]
    change = f"`{' ⏎ '.join(old)}` → `{' ⏎ '.join(new)}`"
    hunk = next((line for line in lines if line.startswith("@@")), None)
    if hunk is None:
        return None, change
    index = int(re.match(r"@@ -(\d+)", hunk).group(1))  # 1-based, in the function's own code
    for line in lines[lines.index(hunk) + 1 :]:
        if line.startswith("-"):
            break
        if line.startswith(" "):
            index += 1
    # the diff's code starts with the function's comments and decorators, the def after them
    from mutmut.mutation.diff_apply import read_functions_from_index

    functions = read_functions_from_index(mutant, path)
    head = 0
    if functions is not None:
        import libcst as cst

        code = cst.Module([functions[0]]).code.strip().splitlines()
        head = next(i for i, c in enumerate(code) if c.lstrip().startswith(("def ", "async def ")))
    cls, name = function_of(mutant)
    start = def_line((root / path).read_text(), cls, name)
    return start + index - 1 - head, change


def render(root: Path, entries: list[dict], times: dict[str, dict]) -> str:
    found = results(root)
    names = list(dict.fromkeys(e["name"] for e in entries))
    counts: dict[str, Counter] = {n: Counter() for n in names}
    survivors: dict[str, list[str]] = {n: [] for n in names}
    outside = 0
    for mutant, (path, code) in sorted(found.items()):
        group = group_of(mutant, entries)
        if group is None:
            outside += 1
            continue
        state = status(code)
        counts[group][state] += 1
        if state == "survived":
            cls, name = function_of(mutant)
            line, change = describe(root, mutant, path)
            where = f"{path}:{line}" if line else path
            function = f"{cls}.{name}" if cls else name
            number = mutant.rpartition("__mutmut_")[2]
            survivors[group].append(f"- `{where}` `{function}` (#{number}): {change}")

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
    ).stdout.strip()
    out = [
        "# Mutation testing",
        "",
        f"`make mutate`: mutmut {metadata.version('mutmut')} on {os.cpu_count()} cores, commit "
        f"{commit or '?'}, {datetime.date.today().isoformat()}. The groups, their mutants and the "
        "tests each may run are `[[tool.mutation.groups]]` in `pyproject.toml`. Score = (killed + "
        "timeout) / mutants; a mutant with no test of its group reaching it counts against it.",
        "",
        "| group | mutants | killed | timeout | survived | no tests | other | score | wall time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    run, unrun = [], []
    for name in names:
        c = counts[name]
        total = sum(c.values()) - c["not checked"]
        if not total:
            continue
        run.append(name)
        if c["not checked"]:
            unrun.append(f"{name} {c['not checked']}")
        other = total - sum(c[k] for k in COLUMNS)
        score = (c["killed"] + c["timeout"]) / total
        wall = f"{times[name]['seconds'] / 60:.1f} min" if name in times else "-"
        out.append(
            f"| {name} | {total} | {c['killed']} | {c['timeout']} | {c['survived']} | "
            f"{c['no tests']} | {other} | {score:.1%} | {wall} |"
        )
    total_seconds = sum(t["seconds"] for t in times.values())
    out += [
        "",
        f"Total wall time {total_seconds / 60:.1f} min (the first group's includes making the "
        "mutants and mapping tests to functions)."
        + (f" Not run yet: {', '.join(unrun)} mutants." if unrun else "")
        + (f" {outside} mutants belong to no group and were not run." if outside else ""),
    ]
    for name in run:
        if survivors[name]:
            out += ["", f"## Survivors: {name} ({len(survivors[name])})", "", *survivors[name]]
    return "\n".join(out) + "\n"


def table_only(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith(("|", "Total")))


def main(argv: list[str] | None = None) -> int:
    from tools.mutation.run import MUTANTS, ROOT, TIMES, load_groups

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="mutants/summary.md")
    args = parser.parse_args(argv)
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    if not MUTANTS.is_dir():
        parser.error("no mutants/: run `make mutate` first")
    text = render(ROOT, load_groups(), times)
    (ROOT / args.out).write_text(text)
    print(table_only(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
