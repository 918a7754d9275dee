"""``python -m verify [REPORT] [--uri URI] [--storage URL]`` (``make verify-report``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from verify import verify
from verify.records import ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m verify",
        description="Re-derive every number of a written report from the MLflow store and the "
        "Optuna storage, by a code path independent of the one that wrote it.",
    )
    parser.add_argument("report", nargs="?", type=Path, default=ROOT / "reports" / "report.md")
    parser.add_argument("--uri", help="the MLflow store (default: the one the report names)")
    parser.add_argument("--storage", help="the Optuna storage (default: each study's own)")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(
            f"error: {args.report} is not a report: run make reproduce-report first",
            file=sys.stderr,
        )
        return 1
    try:
        verdict = verify(args.report, args.uri, args.storage)
    except (LookupError, OSError, KeyError) as err:
        print(f"error: cannot verify {args.report}: {err}", file=sys.stderr)
        return 1
    print(verdict)
    return 1 if verdict.disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
