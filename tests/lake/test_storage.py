"""The lake on disk: snapshots move in whole, the pointer is replaced whole, one batch at a
time per resource."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from shuzhi.core.errors import Conflict
from shuzhi.lake.storage import Lake

CODE = "gat_register"
OLD = "20240301T080000-b1"
NEW = "20240302T080000-b2"


def stage(lake: Lake, snapshot: str, content: bytes = b"PAR1") -> None:
    folder = lake.staging_dir(CODE, snapshot)
    folder.mkdir(parents=True)
    (folder / "data.parquet").write_bytes(content)


def test_a_resource_never_loaded_has_no_current_snapshot(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert lake.current(CODE) is None
    assert lake.current_file(CODE) is None
    assert lake.snapshots(CODE) == []


def test_a_staged_snapshot_is_published_whole_then_pointed_at(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    stage(lake, OLD, b"old")
    lake.publish_staged(CODE, OLD)
    assert not lake.staging_dir(CODE, OLD).exists()
    assert lake.snapshots(CODE) == [OLD]
    assert lake.current(CODE) is None  # published is not current
    lake.point(CODE, OLD)
    assert lake.current(CODE) == OLD
    assert lake.current_file(CODE) == tmp_path / CODE / "snapshots" / OLD / "data.parquet"
    assert lake.current_file(CODE).read_bytes() == b"old"  # type: ignore[union-attr]
    # the pointer is written beside and renamed: no temporary file stays behind
    assert [path.name for path in (tmp_path / CODE).iterdir() if "CURRENT" in path.name] == [
        "CURRENT"
    ]
    lake.point(CODE, None)
    assert lake.current(CODE) is None


@pytest.mark.parametrize("content", ["", "../../etc\n", "latest\n", "20240301T080000-b1/../x"])
def test_a_pointer_that_is_not_a_snapshot_name_is_no_snapshot(tmp_path: Path, content: str) -> None:
    lake = Lake(tmp_path)
    lake.folder(CODE).mkdir(parents=True)
    (lake.folder(CODE) / "CURRENT").write_text(content)
    assert lake.current(CODE) is None


def test_prune_keeps_the_named_snapshots_and_clears_staging(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    for snapshot in (OLD, NEW, "20240303T080000-b3"):
        stage(lake, snapshot)
        lake.publish_staged(CODE, snapshot)
    (lake.folder(CODE) / "snapshots" / "notes").mkdir()
    stage(lake, "20240304T080000-b4")
    removed = lake.prune(CODE, [NEW, "20240303T080000-b3"])
    assert removed == [OLD]
    assert lake.snapshots(CODE) == [NEW, "20240303T080000-b3"]
    assert not (lake.folder(CODE) / ".staging").exists()
    assert (lake.folder(CODE) / "snapshots" / "notes").exists()  # not ours to delete


def test_one_batch_at_a_time_per_resource(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    with lake.locked(CODE):
        assert lake.is_locked(CODE)
        with (
            pytest.raises(Conflict, match="a batch of gat_register is already running"),
            lake.locked(CODE),
        ):
            pass
        # another resource is not held up
        with lake.locked("wjw_clinics"):
            pass
    assert not lake.is_locked(CODE)
    with lake.locked(CODE):
        pass


def test_the_kernel_releases_the_lock_of_a_process_that_dies(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from shuzhi.lake.storage import Lake\n"
        f"with Lake(Path({str(tmp_path)!r})).locked({CODE!r}):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert lake.is_locked(CODE)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    deadline = time.monotonic() + 5
    while lake.is_locked(CODE) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not lake.is_locked(CODE)


def test_quarantines_older_than_a_batch_are_pruned(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    for batch_id in (3, 7, 12):
        path = lake.quarantine_file("res", batch_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert lake.prune_quarantine("res", older_than=7) == [3]
    assert not lake.quarantine_file("res", 3).exists()
    assert lake.quarantine_file("res", 7).exists() and lake.quarantine_file("res", 12).exists()
    assert lake.prune_quarantine("missing", older_than=100) == []
