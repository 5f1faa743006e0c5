"""pytest configuration: every test runs in its own temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test in a fresh directory so ``mktemp()`` never litters the checkout."""
    monkeypatch.chdir(tmp_path)
