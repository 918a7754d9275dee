"""The written report, read back: its sections, their sentences and their tables.

Only the Markdown is read (``report.md``); the HTML is the same document rendered again. A table
is a caption line (``**...**``) followed by a pipe table; a cell may hold links
(``[text](url)``), whose run ids are what the verifier follows into the MLflow store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")
RUN_ID = re.compile(r"/runs/([0-9a-f]{32})")


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[dict[str, str]]
    read: bool = False  # a check looked it up: a table no check reads is not verified


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)  # sentences and paragraphs, in order
    tables: list[Table] = field(default_factory=list)

    def table(self, caption_start: str) -> Table | None:
        found = [t for t in self.tables if t.caption.startswith(caption_start)]
        if found:
            found[0].read = True
        return found[0] if found else None


def run_ids(cell: str) -> list[str]:
    """The MLflow run ids a cell links to, in order."""
    return [m.group(1) for _, url in LINK.findall(cell) for m in [RUN_ID.search(url)] if m]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def read(path: Path) -> dict[str, Section]:
    """The report's sections by title, each with its text lines and tables."""
    sections: dict[str, Section] = {}
    current: Section | None = None
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("## "):
            current = sections.setdefault(line[3:], Section(line[3:]))
        elif current is not None and line.startswith("**") and line.endswith("**"):
            header = _cells(lines[i + 2])
            rows = []
            i += 4  # caption, blank, header, alignment
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(dict(zip(header, _cells(lines[i]))))
                i += 1
            current.tables.append(Table(line.strip("*"), header, rows))
            continue
        elif current is not None and line and not line.startswith(("![", "*", "- [", "# ")):
            current.lines.append(line)  # not a title, the contents, a figure or its caption
        i += 1
    return sections
