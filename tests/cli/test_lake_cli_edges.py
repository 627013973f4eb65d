"""Lake CLI inputs found in review to print a traceback: each is one line and exit 2 now."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_lake_cli import assert_error, lake_template, loaded, shuzhi
from tests.conftest import World
from tests.lake.data import CODE, write_csv

__all__ = ["lake_template", "loaded"]  # fixtures, shared with test_lake_cli

HUGE = str(2**63)


@pytest.mark.parametrize(
    "args",
    [
        ["quarantine", "list", CODE, "--batch", HUGE],
        ["quarantine", "show", CODE, "--batch", HUGE],
        ["sources", "run", HUGE],
        ["sources", "remove", HUGE],
    ],
)
def test_an_id_past_any_row_is_a_usage_error(
    loaded: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    status, _, err = shuzhi(args, monkeypatch, capsys)
    assert status == 2 and "Traceback" not in err, err


@pytest.mark.parametrize("target", ["folder", "missing/dir/q.csv"])
def test_exporting_the_quarantine_where_no_file_can_be_written_is_one_line(
    loaded: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    target: str,
) -> None:
    (tmp_path / "folder").mkdir()
    shuzhi(["ingest", CODE, str(write_csv(tmp_path / "people.csv"))], monkeypatch, capsys)
    status, _, err = shuzhi(
        ["quarantine", "export", CODE, "-o", str(tmp_path / target)], monkeypatch, capsys
    )
    assert_error(status, err, "cannot write")


@pytest.mark.parametrize("delimiter", [";;", '"'])
def test_an_unusable_delimiter_is_one_line(
    loaded: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    delimiter: str,
) -> None:
    path = str(write_csv(tmp_path / "people.csv"))
    status, _, err = shuzhi(["ingest", CODE, path, "--delimiter", delimiter], monkeypatch, capsys)
    assert_error(status, err, "delimiter")
