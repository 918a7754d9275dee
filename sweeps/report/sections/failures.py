"""Runs that failed: the report is still written with what finished."""

from __future__ import annotations

import pandas as pd

from sweeps.report.context import Context
from sweeps.report.document import Section


def section(ctx: Context) -> Section | None:
    if not ctx.errors:
        return None
    table = pd.DataFrame(
        [{"experiment": p, "seed": s, "error": e} for (p, s), e in sorted(ctx.errors.items())]
    )
    return Section(
        "Failed runs",
        [f"{len(ctx.errors)} run(s) failed; the tables above use the runs that finished."],
        [("Failures", table)],
    )
