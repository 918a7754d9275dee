"""The report as a document: sections of text, tables and figures, rendered twice, as
``report.md`` (figures as files beside it) and a self-contained ``report.html`` (inlined).

A missing number prints as "-", never NaN. Every sentence comes from a section function that
read the numbers it states.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

MISSING = "-"


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)


def cell(value: object) -> str:
    """How a table cell reads: 4 significant digits, "-" for anything missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def readable(table: pd.DataFrame) -> pd.DataFrame:
    return table.apply(lambda column: column.map(cell)) if not table.empty else table


def pm(mean: float, sd: float, digits: int = 2) -> str:
    """``97.42 ± 0.02``; the mean alone when there is no spread to give."""
    if isinstance(sd, float) and math.isnan(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def write_markdown(title: str, sections: list[Section], folder: Path) -> Path:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        out += [f"{line}\n" for line in s.text]
        for caption, table in s.tables:
            out += [f"**{caption}**", "", readable(table).to_markdown(index=False), ""]
        for caption, path in s.figures:
            out += [f"![{caption}]({path.relative_to(folder)})", "", f"*{caption}*", ""]
    path = folder / "report.md"
    path.write_text("\n".join(out))
    return path


def write_html(title: str, sections: list[Section], folder: Path) -> Path:
    """One file, figures inlined as base64, so it can be mailed or attached as it is."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        body.append(f"<h2>{html.escape(s.title)}</h2>")
        body += [f"<p>{html.escape(line)}</p>" for line in s.text]
        for caption, table in s.tables:
            body.append(f"<h4>{html.escape(caption)}</h4>")
            body.append(readable(table).to_html(index=False, border=0))
        for caption, path in s.figures:
            data = base64.b64encode(path.read_bytes()).decode()
            body.append(
                f'<figure><img alt="{html.escape(caption)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}'
                "</figcaption></figure>"
            )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
        "td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}"
        "img{max-width:100%}figcaption{font-style:italic;color:#555}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    path = folder / "report.html"
    path.write_text(page)
    return path
