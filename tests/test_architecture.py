"""The shape DESIGN.md promises: one-way dependencies and the same files in every package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = ("regions", "orgs", "catalog", "lake", "gateway", "brain", "loop", "notify")


def test_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a dev dependency"
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("package", DOMAIN)
def test_domain_package_has_the_common_shape(package: str) -> None:
    folder = ROOT / "src" / "shuzhi" / package
    for name in ("models.py", "schemas.py", "service.py", "queries.py", "rules.py", "README.md"):
        assert (folder / name).is_file(), f"{package}/{name} missing"
