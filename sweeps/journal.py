"""Optuna journal files that survive a crash mid-write.

Every sweep and report shares one journal, so one bad line must not brick them all. A write
cut short (a crash, a full disk) leaves a last line without its newline; Optuna skips it when
reading, but the next append is glued onto it, and from then on no study in the file opens.
When the journal looks torn, under its own lock (no append is half done while it is held), a
torn last line is cut off; a journal already damaged that way has each glued line reduced to the
operation it still holds. No reader ever applied a torn operation (it never parsed), so cutting
it changes no study. What is cut is kept in ``<journal>.torn`` and named in one warning.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

log = logging.getLogger(__name__)
OP = b'{"op_code"'  # how every operation Optuna writes begins


def open_journal(path: Path) -> optuna.storages.JournalStorage:
    """The journal storage at ``path``, repaired first if a crash tore it.

    A whole journal opens without its lock, as Optuna reads it: a holder that is stopped
    (Ctrl-Z, a frozen node) must not make every other command wait until Optuna breaks the
    lock. Only a journal that looks torn is looked at again, and mended, under the lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = JournalFileSymlinkLock(str(path))
    backend = JournalFileBackend(str(path), lock_obj=lock)  # creates the file if missing
    if not torn_tail(path):
        try:
            return optuna.storages.JournalStorage(backend)
        except ValueError:  # a torn line glued to a later one (JSONDecodeError is one)
            pass
    lock.acquire()
    try:
        cut_torn_tail(path)
        try:
            return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
        except ValueError:
            repair(path)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
    finally:
        lock.release()


def _keep(path: Path, torn: bytes, what: str) -> None:
    with open(path.with_name(path.name + ".torn"), "ab") as f:
        f.write(torn + b"\n")
    log.warning(
        f"warning: {path}: {what} ({len(torn)} bytes, kept in {path.name}.torn), left by a "
        "crash in the middle of a write; every complete operation is kept"
    )


def torn_tail(path: Path) -> bool:
    """Whether the last line lacks its newline (a write cut short, or one under way)."""
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def cut_torn_tail(path: Path) -> None:
    """Cut a last line without its newline (the part of a write a crash cut short)."""
    if not torn_tail(path):
        return
    with open(path, "rb+") as f:
        data = f.read()  # only on this rare path
        start = data.rfind(b"\n") + 1
        _keep(path, data[start:], "cut a torn last line")
        f.truncate(start)


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
        return True
    except ValueError:
        return False


def repair(path: Path) -> None:
    """Reduce every line that does not parse to the last whole operation it holds (a torn
    line with a later write glued on), or drop it; the file is replaced atomically."""
    lines, dropped = [], []
    for line in path.read_bytes().splitlines():
        if _parses(line):
            lines.append(line)
            continue
        start = line.rfind(OP)
        if start > 0 and _parses(line[start:]):
            lines.append(line[start:])
            dropped.append(line[:start])
        else:
            dropped.append(line)
    tmp = path.with_name(path.name + ".repairing")
    tmp.write_bytes(b"".join(line + b"\n" for line in lines))
    os.replace(tmp, path)
    _keep(path, b"\n".join(dropped), f"repaired {len(dropped)} torn line(s)")
