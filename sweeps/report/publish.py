"""Putting a finished report into its folder without touching anything it did not write.

The folder may hold the user's own files (``report.out=.`` is the repository). The report
owns exactly the entries listed in its manifest, ``.report-files``: it replaces or deletes
only those, and refuses to write over anything else. Each file moves in with one atomic
``os.replace``, so a crash at any moment leaves every file either the old or the new one
(never missing), and the manifest always lists every file of ours that may be there. A
staging folder left by a killed report is removed by the next one.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from pipeline.config import ConfigError
from pipeline.tracking import lifecycle

MANIFEST = ".report-files"
FIGURES = "figures"
FIXED = ("report.md", "report.html", FIGURES)  # written by every report: checked up front
STAGING = re.compile(r"\.report-(\d+)\.(\d+)-")


def owned(out: Path) -> set[str]:
    """The entries (relative paths) an earlier report wrote here."""
    try:
        return set((out / MANIFEST).read_text().split("\n")) - {""}
    except FileNotFoundError:
        return set()


def _write_manifest(out: Path, names: set[str]) -> None:
    with tempfile.NamedTemporaryFile("w", dir=out, prefix=".manifest-", delete=False) as f:
        f.write("".join(f"{n}\n" for n in sorted(names)))
    os.replace(f.name, out / MANIFEST)


def refuse_foreign(out: Path, names: list[str]) -> None:
    """Raise if any of ``names`` exists in ``out`` without being the report's own."""
    mine = owned(out)
    for name in names:
        path = out / name
        if (path.exists() or path.is_symlink()) and name not in mine:
            raise ConfigError(
                f"report.out={str(out)!r} holds {name!r}, which no report wrote: move it, or "
                "choose another report.out (a report never writes over files it did not write)"
            )


def staging(out: Path) -> Path:
    """A new staging folder in ``out`` (named after this process), after removing the ones
    whose process is gone."""
    for old in out.glob(".report-*"):
        m = STAGING.match(old.name)
        if m and old.is_dir() and not lifecycle.alive(f"{lifecycle.this_host()}:{m[1]}:{m[2]}"):
            shutil.rmtree(old, ignore_errors=True)
    pid, start = lifecycle.me().rsplit(":", 2)[1:]
    return Path(tempfile.mkdtemp(prefix=f".report-{pid}.{start}-", dir=out))


def swap_in(folder: Path, out: Path) -> None:
    """Move the complete report in ``folder`` into ``out``: its files replace the previous
    report's, the previous report's other files are deleted, nothing else is touched."""
    new = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    before = owned(out)
    refuse_foreign(out, sorted(new | {FIGURES}))  # figures/ is made and owned either way
    _write_manifest(out, before | new | {FIGURES})  # first: a crash leaves no file unowned
    (out / FIGURES).mkdir(exist_ok=True)
    for name in sorted(new):
        os.replace(folder / name, out / name)
    for name in sorted(before - new - {FIGURES}):
        stale = out / name
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()
    _write_manifest(out, new | {FIGURES})
    shutil.rmtree(folder)
