"""A journal torn by a crash mid-write opens again, with every complete operation (real Optuna
journals, opened through the product's own ``storage.open_storage``)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from sweeps import storage


def make(journal: Path, name: str, values: list[float]) -> None:
    study = optuna.create_study(
        study_name=name, storage=storage.open_storage(f"journal:{journal}"), load_if_exists=True
    )
    for v in values:
        study.add_trial(optuna.trial.create_trial(value=v))


def values(journal: Path, name: str) -> list[float]:
    """The study's values, read by plain Optuna (no repair) from a fresh storage."""
    plain = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    return [t.value for t in optuna.load_study(study_name=name, storage=plain).trials]


@pytest.fixture(autouse=True)
def _fresh_storages() -> None:
    storage.open_storage.cache_clear()  # each open replays the file, as a new command would


def test_a_torn_last_line_is_cut_and_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "studies.journal"
    make(journal, "a", [1.0, 2.0])
    whole = journal.read_bytes()
    last = whole.splitlines()[-1]
    journal.write_bytes(whole + last[: len(last) // 2])  # a crash in the middle of a write
    storage.open_storage.cache_clear()
    make(journal, "a", [3.0])  # resumes, and appends after a clean line
    make(journal, "b", [4.0])  # a new study in the same journal
    assert values(journal, "a") == [1.0, 2.0, 3.0] and values(journal, "b") == [4.0]
    assert (tmp_path / "studies.journal.torn").read_bytes() == last[: len(last) // 2] + b"\n"
    (warning,) = [r.message for r in caplog.records if "torn" in r.message]
    assert "cut a torn last line" in warning and "studies.journal.torn" in warning


def test_a_journal_already_glued_onto_a_torn_line_is_repaired(tmp_path: Path) -> None:
    journal = tmp_path / "studies.journal"
    make(journal, "a", [1.0])
    whole = journal.read_bytes()
    storage.open_storage.cache_clear()
    make(journal, "b", [2.0])
    later = journal.read_bytes()[len(whole) :]
    torn = whole.splitlines()[-1][:20]
    journal.write_bytes(whole + torn + later)  # what an older version did: glued on
    with pytest.raises(ValueError):
        values(journal, "a")  # bricked: no study of the journal opens
    storage.open_storage.cache_clear()
    make(journal, "c", [3.0])
    assert values(journal, "a") == [1.0] and values(journal, "b") == [2.0]
    assert values(journal, "c") == [3.0]
    assert torn in (tmp_path / "studies.journal.torn").read_bytes()


def test_an_intact_journal_is_left_byte_for_byte(tmp_path: Path) -> None:
    journal = tmp_path / "studies.journal"
    make(journal, "a", [1.0])
    before = journal.read_bytes()
    storage.open_storage.cache_clear()
    storage.open_storage(f"journal:{journal}")
    assert journal.read_bytes() == before and not (tmp_path / "studies.journal.torn").exists()


def test_a_whole_journal_opens_while_a_stopped_holder_keeps_its_lock(tmp_path: Path) -> None:
    # CI: a test froze a sweep (SIGSTOP) while it held the lock; opening the journal waited
    # 30 s, Optuna then broke the lock, and the sweep failed when it released it
    journal = tmp_path / "studies.journal"
    make(journal, "a", [1.0])
    holder = optuna.storages.journal.JournalFileSymlinkLock(str(journal))
    holder.acquire()  # held, as by a process that is stopped
    storage.open_storage.cache_clear()
    opened = storage.open_storage(f"journal:{journal}")
    assert [t.value for t in optuna.load_study(study_name="a", storage=opened).trials] == [1.0]
    holder.release()  # still the holder's: nobody broke it (else RuntimeError)
