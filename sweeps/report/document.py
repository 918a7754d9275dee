"""The report as a document: sections of text, tables and figures, rendered twice, as
``report.md`` (figures as files beside it) and a self-contained ``report.html`` (inlined).

A missing number prints as "-", never NaN; a run id is a ``Link`` to its page in the MLflow UI;
numbers are right-aligned and text left-aligned. Every sentence comes from a section function
that read the numbers it states.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pandas.api.types import is_numeric_dtype

MISSING = "-"


@dataclass(frozen=True)
class Link:
    """A table cell that points somewhere: a run id to its MLflow UI page."""

    text: str
    url: str

    def __str__(self) -> str:
        return self.text


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)


def cell(value: object, markdown: bool = True) -> str:
    """How a table cell reads: 4 significant digits, "-" for anything missing, a link as
    Markdown or HTML."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, tuple):  # several links in one cell: the runs of a group
        return " ".join(cell(v, markdown) for v in value) or MISSING
    if isinstance(value, Link):
        if markdown:
            return f"[{value.text}]({value.url})"
        return f'<a href="{html.escape(value.url)}">{html.escape(value.text)}</a>'
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value) if markdown else html.escape(str(value))


def readable(table: pd.DataFrame, markdown: bool = True) -> pd.DataFrame:
    if table.empty:
        return table
    return table.apply(lambda column: column.map(lambda v: cell(v, markdown)))


def numeric(table: pd.DataFrame) -> list[bool]:
    """Which columns hold numbers (right-aligned); the others are text (left-aligned)."""
    return [is_numeric_dtype(table[c]) and table[c].dtype != bool for c in table.columns]


def anchor(title: str) -> str:
    """The anchor a Markdown renderer (GitHub's rule) gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def pm(mean: float, sd: float, digits: int = 2) -> str:
    """``97.42 ± 0.02``; the mean alone when there is no spread to give."""
    if isinstance(sd, float) and math.isnan(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def write_markdown(title: str, sections: list[Section], folder: Path) -> Path:
    out = [f"# {title}", ""]
    out += [f"- [{s.title}](#{anchor(s.title)})" for s in sections] + [""]
    for s in sections:
        out += [f"## {s.title}", ""]
        out += [f"{line}\n" for line in s.text]
        for caption, table in s.tables:
            align = ["right" if n else "left" for n in numeric(table)]
            text = readable(table).to_markdown(index=False, colalign=align, disable_numparse=True)
            out += [f"**{caption}**", "", text, ""]
        for caption, path in s.figures:
            out += [f"![{caption}]({path.relative_to(folder)})", "", f"*{caption}*", ""]
    path = folder / "report.md"
    path.write_text("\n".join(out))
    return path


def write_html(title: str, sections: list[Section], folder: Path) -> Path:
    """One file, figures inlined as base64, so it can be mailed or attached as it is."""
    body = [f"<h1>{html.escape(title)}</h1>", "<ul>"]
    body += [f'<li><a href="#{anchor(s.title)}">{html.escape(s.title)}</a></li>' for s in sections]
    body.append("</ul>")
    for s in sections:
        body.append(f'<h2 id="{anchor(s.title)}">{html.escape(s.title)}</h2>')
        body += [f"<p>{html.escape(line)}</p>" for line in s.text]
        for caption, table in s.tables:
            body.append(f"<h4>{html.escape(caption)}</h4>")
            body.append(html_table(table))
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
        "td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}"
        ".num{text-align:right}"
        "img{max-width:100%}figcaption{font-style:italic;color:#555}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    path = folder / "report.html"
    path.write_text(page)
    return path


def html_table(table: pd.DataFrame) -> str:
    """A table with numbers right-aligned, text left-aligned and links clickable."""
    kinds = [' class="num"' if n else "" for n in numeric(table)]
    head = "".join(f"<th{k}>{html.escape(str(c))}</th>" for c, k in zip(table.columns, kinds))
    rows = [
        "<tr>" + "".join(f"<td{k}>{v}</td>" for v, k in zip(row, kinds)) + "</tr>"
        for row in readable(table, markdown=False).itertuples(index=False)
    ]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
