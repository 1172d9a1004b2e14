"""`tenantry backup`: a consistent copy of a SQLite database, taken while the server runs.

SQLite's online backup API copies every page in one step, inside one read transaction of the
source: the copy is the database as of one commit, whatever is written meanwhile (in WAL mode
the writers do not even wait). Copying the file itself would not do: the latest commits may
still be in the `-wal` file. The copy is written beside its destination, checked, made a single
self-contained file (no `-wal`), and only then renamed into place, readable by its owner alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from pathlib import Path


class BackupError(Exception):
    """Why no backup was written, in one sentence."""


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy the database at `source` to `target` (replaced if it exists); return its size."""
    try:
        _check(source, target)
    except OSError as exc:  # a name too long for the system, a folder that cannot be read
        raise BackupError(f"cannot write {target}: {exc.strerror or exc}") from None
    # A short name of its own beside the target: the target's name may be as long as the system allows.
    partial = target.with_name(f".tenantry-backup-{secrets.token_hex(4)}.partial")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        _copy(source, partial)
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source}: {exc}") from None
    except OSError as exc:
        raise BackupError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
    return target.stat().st_size


def _check(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    if target.is_dir():
        raise BackupError(f"{target} is a folder; name the file to write")
    if target.exists() and target.samefile(source):
        raise BackupError("the backup cannot replace the database itself")
    if not target.parent.is_dir():
        raise BackupError(f"there is no folder {target.parent}")


def _copy(source: Path, partial: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as live,
        contextlib.closing(sqlite3.connect(partial)) as copy,
    ):
        live.backup(copy)  # every page in one step: one consistent snapshot
        copy.execute("PRAGMA journal_mode=DELETE")
        problems = copy.execute("PRAGMA quick_check").fetchall()
        if problems != [("ok",)]:
            raise BackupError(f"the copy of {source} does not check out: {problems[0][0]}")
