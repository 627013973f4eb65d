"""The lake on disk: a folder per resource, immutable snapshots, an atomic current pointer.

::

    DATA_DIR/lake/<resource code>/
        CURRENT                          name of the current snapshot (replaced atomically)
        snapshots/<snapshot>/data.parquet
        snapshots/<snapshot>/lineage.json   its batch, source, mode and parent snapshot
        quarantine/batch-<id>.parquet    rows refused by batch <id>, with their reasons
        .staging/<snapshot>/             a batch being written; never read
        .lock                            held (flock) while a batch of the resource runs

A snapshot is written under ``.staging`` and renamed into ``snapshots`` whole, then
``CURRENT`` is replaced with ``os.replace``: a reader sees the old snapshot or the new one,
never a half-written one, and a batch killed at any point leaves the previous one current.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from shuzhi.core.errors import Conflict, Message
from shuzhi.lake.rules import SNAPSHOT_NAME

CURRENT = "CURRENT"
DATA_FILE = "data.parquet"
LINEAGE_FILE = "lineage.json"


class Lake:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # code → (the pointer file's inode, mtime and size; the snapshot it named)
        self._pointers: dict[str, tuple[tuple[int, int, int], str | None]] = {}

    def folder(self, code: str) -> Path:
        return self.root / code

    def snapshot_dir(self, code: str, snapshot: str) -> Path:
        return self.folder(code) / "snapshots" / snapshot

    def snapshot_file(self, code: str, snapshot: str) -> Path:
        return self.snapshot_dir(code, snapshot) / DATA_FILE

    def staging_dir(self, code: str, snapshot: str) -> Path:
        return self.folder(code) / ".staging" / snapshot

    def quarantine_file(self, code: str, batch_id: int) -> Path:
        return self.folder(code) / "quarantine" / f"batch-{batch_id}.parquet"

    @property
    def temp_dir(self) -> Path:
        return self.root / ".tmp"

    def current(self, code: str) -> str | None:
        """The current snapshot's name, or None if the resource was never loaded. The
        pointer is read again only when its file changed (it is replaced, never written
        in place, so a new one is a new inode): a gateway read asks on every call."""
        pointer = os.path.join(self.root, code, CURRENT)
        try:
            info = os.stat(pointer)
            seen = (info.st_ino, info.st_mtime_ns, info.st_size)
            kept = self._pointers.get(code)
            if kept is not None and kept[0] == seen:
                return kept[1]
            with open(pointer, encoding="utf-8") as handle:
                name = handle.read().strip()
        except FileNotFoundError:
            return None
        found = name if SNAPSHOT_NAME.match(name) else None
        self._pointers[code] = (seen, found)
        return found

    def current_file(self, code: str) -> Path | None:
        name = self.current(code)
        return None if name is None else self.snapshot_file(code, name)

    def write_lineage(self, code: str, snapshot: str, lineage: dict) -> None:
        """``lineage.json`` beside a staged snapshot's data: its batch, source and parent."""
        folder = self.staging_dir(code, snapshot)
        (folder / LINEAGE_FILE).write_text(
            json.dumps(lineage, ensure_ascii=False, indent=2), encoding="utf-8"
        )

    def lineage(self, code: str, snapshot: str) -> dict | None:
        try:
            return json.loads(
                (self.snapshot_dir(code, snapshot) / LINEAGE_FILE).read_text(encoding="utf-8")
            )
        except FileNotFoundError:
            return None

    def publish_staged(self, code: str, snapshot: str) -> None:
        """Move a staged snapshot into place whole; it is not current until ``point``."""
        target = self.snapshot_dir(code, snapshot)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.staging_dir(code, snapshot), target)
        _fsync_dir(target.parent)

    def point(self, code: str, snapshot: str | None) -> None:
        """Write the current pointer with a rename, so it is replaced whole or not at all."""
        pointer = self.folder(code) / CURRENT
        if snapshot is None:
            pointer.unlink(missing_ok=True)
            return
        temporary = pointer.with_name(f".{CURRENT}.{os.getpid()}")
        with open(temporary, "w") as handle:
            handle.write(snapshot + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, pointer)
        _fsync_dir(pointer.parent)

    def snapshots(self, code: str) -> list[str]:
        folder = self.folder(code) / "snapshots"
        if not folder.exists():
            return []
        return sorted(path.name for path in folder.iterdir() if SNAPSHOT_NAME.match(path.name))

    def prune(self, code: str, keep: list[str]) -> list[str]:
        """Delete snapshots not in ``keep`` and leftovers of dead batches; returns removed."""
        removed = []
        for name in self.snapshots(code):
            if name not in keep:
                shutil.rmtree(self.snapshot_dir(code, name), ignore_errors=True)
                removed.append(name)
        self.clear_staging(code)
        return removed

    def prune_quarantine(self, code: str, *, older_than: int) -> list[int]:
        """Delete the quarantines of batches before ``older_than``; returns their ids."""
        folder = self.folder(code) / "quarantine"
        removed = []
        for path in folder.glob("batch-*.parquet") if folder.exists() else []:
            number = path.stem.removeprefix("batch-")
            if number.isdigit() and int(number) < older_than:
                path.unlink(missing_ok=True)
                removed.append(int(number))
        return sorted(removed)

    def clear_staging(self, code: str) -> None:
        shutil.rmtree(self.folder(code) / ".staging", ignore_errors=True)

    @contextlib.contextmanager
    def locked(self, code: str, *, wait: bool = False) -> Iterator[None]:
        """Hold the resource's batch lock; the kernel drops it if the process dies."""
        folder = self.folder(code)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a+") as handle:
            flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
            try:
                fcntl.flock(handle.fileno(), flags)
            except BlockingIOError:
                raise Conflict(
                    Message(
                        "a batch of {code} is already running; try again when it ends", code=code
                    )
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def is_locked(self, code: str) -> bool:
        try:
            with self.locked(code):
                return False
        except Conflict:
            return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
