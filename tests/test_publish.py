"""A report's files into a folder that also holds the user's: nothing foreign touched, no file
missing after a crash at any point, no staging folder left for ever."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pipeline.config import ConfigError
from sweeps.report import publish


def new_report(tmp: Path, out: Path, files: dict[str, str]) -> Path:
    """A staging folder in ``out`` holding ``files`` (relative name: text)."""
    folder = publish.staging(out)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def tree(out: Path) -> dict[str, str]:
    """The folder's visible files (not the manifest, not staging folders)."""
    return {
        str(p.relative_to(out)): p.read_text()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(out).parts)
    }


def test_a_report_replaces_only_its_own_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    (out / "notes").mkdir()
    (out / "notes" / "a.txt").write_text("mine too")
    first = {"report.md": "1", "runs.csv": "1", "figures/a.png": "1", "figures/b.png": "1"}
    publish.swap_in(new_report(tmp_path, out, first), out)
    assert tree(out) == {**first, "notes/a.txt": "mine too", "thesis.tex": "mine"}
    second = {"report.md": "2", "figures/a.png": "2"}  # runs.csv and b.png are gone from it
    publish.swap_in(new_report(tmp_path, out, second), out)
    assert tree(out) == {**second, "notes/a.txt": "mine too", "thesis.tex": "mine"}
    assert publish.owned(out) == {"report.md", "figures/a.png", "figures"}
    assert not [p for p in out.glob(".report-*") if p.is_dir()]  # no staging folder left
    assert not list(out.glob(".manifest-*"))


def test_a_report_through_a_symlink_keeps_the_users_files(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "thesis.tex").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(real)
    publish.swap_in(new_report(tmp_path, link, {"report.md": "1"}), link)
    publish.swap_in(new_report(tmp_path, link, {"report.html": "2"}), link)
    assert tree(real) == {"report.html": "2", "thesis.tex": "mine"}


@pytest.mark.parametrize("foreign", ["report.md", "figures", "runs.csv"])
def test_a_name_the_report_would_write_over_is_refused(tmp_path: Path, foreign: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / foreign).mkdir() if foreign == "figures" else (out / foreign).write_text("mine")
    files = {"report.md": "1", "runs.csv": "1", "figures/a.png": "1"}
    folder = new_report(tmp_path, out, files)
    with pytest.raises(ConfigError, match=f"holds '{foreign}', which no report wrote: move it"):
        publish.swap_in(folder, out)
    assert (out / foreign).exists() and not publish.owned(out)
    if foreign != "runs.csv":  # the names every report writes are refused before any training
        with pytest.raises(ConfigError, match=foreign):
            publish.refuse_foreign(out, list(publish.FIXED))


def test_a_crash_in_the_swap_leaves_every_file_old_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    old = {"report.md": "old", "report.html": "old", "figures/a.png": "old"}
    publish.swap_in(new_report(tmp_path, out, old), out)
    new = {"report.md": "new", "report.html": "new", "figures/a.png": "new", "x.csv": "new"}
    folder = new_report(tmp_path, out, new)
    real, moved = os.replace, []

    def dies_on_the_second_file(src: str | Path, dst: str | Path) -> None:
        if Path(src).parent == folder or Path(src).parent.parent == folder:
            moved.append(dst)
            if len(moved) == 2:
                raise SystemExit("killed")  # as SIGKILL would, between two renames
        real(src, dst)

    monkeypatch.setattr(os, "replace", dies_on_the_second_file)
    with pytest.raises(SystemExit):
        publish.swap_in(folder, out)
    monkeypatch.undo()
    now = tree(out)
    assert set(now) >= set(old) and all(now[k] in ("old", "new") for k in old)
    assert set(now) - set(old) <= publish.owned(out)  # a new file is owned already
    # the next report puts its files in and removes what the killed one had moved
    again = new_report(tmp_path, out, {"report.md": "3"})
    publish.swap_in(again, out)
    assert tree(out) == {"report.md": "3"}


def test_a_killed_reports_staging_folder_is_removed_by_the_next(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    left = tmp_path / f".report-{gone.pid}.1-abc"
    left.mkdir()
    (left / "report.md").write_text("half")
    live = publish.staging(tmp_path)  # named after this process: kept while it lives
    publish.staging(tmp_path)
    assert not left.exists() and live.exists()
