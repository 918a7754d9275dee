"""The report's Table 1 (section 3) beside ours."""

from __future__ import annotations

from sweeps.report.context import Context
from sweeps.report.document import Section


def section(ctx: Context) -> Section:
    rows = ctx.gradcheck
    worst = rows["abs_difference"].max()
    over = int((rows["report_abs_difference"] > 1e-4).sum())
    return Section(
        "Gradient check (report section 3, Table 1)",
        [
            f"Backprop and the numerical gradient (epsilon 1e-2, one training image) differ by "
            f"at most {worst:.2e}, {'within' if worst < 1e-4 else 'above'} the bound of 1e-4; "
            f"{over} of the original's 6 rows are above it. Every parameter of a small float64 "
            "network agrees to better than 1e-6 relative error for each activation and penalty "
            "(`python -m pipeline.gradcheck`)."
        ],
        [("Table 1, ours beside the original's", rows)],
    )
