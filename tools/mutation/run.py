"""``make mutate``: mutmut over the groups of ``[[tool.mutation.groups]]``, then the summary.

    python -m tools.mutation.run [GROUP ...] [--fresh | --survivors] [--out mutants/summary.md]

Without GROUP: every group not marked ``optional``, from a fresh ``mutants/``. With GROUP: those
groups, added to the results already in ``mutants/`` (``--fresh`` to start over).
``--survivors``: only the mutants of those groups that survived the last run (after adding
tests for them) or were not run yet (their function changed since), the rest of the results
kept. Runs ``mutmut
run <the group's globs>`` once per group (the first run also makes the mutants and records which
tests reach which function: mutmut's "stats"), logs each to ``mutants/<group>.log``, keeps the
wall times in ``mutants/mutation-times.json`` and writes the summary
(``tools/mutation/summary.py``) to ``mutants/summary.md``: every survivor, from which the
committed ``docs/mutation.md`` (scores, and why each survivor left is equivalent) is written.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from tools.mutation import summary

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = ROOT / "mutants"
TIMES = MUTANTS / "mutation-times.json"


def load_groups() -> list[dict]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["mutation"]["groups"]


def run_group(name: str, globs: list[str]) -> dict:
    """One ``mutmut run``; the setup (mutants, stats, clean and forced-fail runs) is timed
    apart from the mutants themselves."""
    mutmut = Path(sys.executable).with_name("mutmut")
    log_path = MUTANTS / f"{name}.log"
    env = {**os.environ, "MUTATION_GROUP": name, "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    setup = None
    with (
        open(log_path, "wb") as log,
        subprocess.Popen(
            [str(mutmut), "run", *globs],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        ) as proc,
    ):
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            log.write(chunk)
            if setup is None and b"Running mutation testing" in chunk:
                setup = time.monotonic() - start
    total = time.monotonic() - start
    return {
        "seconds": round(total, 1),
        "setup_seconds": round(setup, 1) if setup is not None else None,
        "exit_code": proc.returncode,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help="group names (default: all but optional)")
    parser.add_argument("--fresh", action="store_true", help="start over even with GROUP")
    parser.add_argument("--survivors", action="store_true", help="re-run the survivors only")
    parser.add_argument("--out", default="mutants/summary.md", help="the Markdown summary")
    args = parser.parse_args(argv)

    entries = load_groups()
    names = list(dict.fromkeys(e["name"] for e in entries))
    optional = {e["name"] for e in entries if e.get("optional")}
    chosen = args.groups or [n for n in names if n not in optional]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; groups: {names}")

    fresh = (args.fresh or not args.groups) and not args.survivors
    if fresh:
        shutil.rmtree(MUTANTS, ignore_errors=True)
    MUTANTS.mkdir(exist_ok=True)
    times = json.loads(TIMES.read_text()) if not fresh and TIMES.exists() else {}
    found = summary.results(ROOT) if args.survivors else {}
    for name in chosen:
        globs = [g for e in entries if e["name"] == name for g in e["mutants"]]
        key = name
        if args.survivors:
            globs = sorted(
                m
                for m, (_, code) in found.items()
                if summary.status(code) in ("survived", "not checked")
                and summary.group_of(m, entries) == name
            )
            key = f"{name} (survivors)"
            if not globs:
                continue
        print(f"mutate: {key} ({len(globs)} globs), log in mutants/{name}.log", flush=True)
        times[key] = run_group(name, globs)
        TIMES.write_text(json.dumps(times, indent=2))
        t = times[key]
        print(f"mutate: {name} took {t['seconds']:.0f}s (setup {t['setup_seconds']}s)", flush=True)
        if t["exit_code"] != 0:
            tail = (MUTANTS / f"{name}.log").read_bytes()[-3000:].decode(errors="replace")
            print(tail.replace("\r", "\n"), file=sys.stderr)
            print(f"mutate: mutmut failed in group {name} (exit {t['exit_code']})", file=sys.stderr)
            return 1

    out = ROOT / args.out
    text = summary.render(ROOT, entries, times)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(summary.table_only(text))
    print(f"mutate: summary in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
