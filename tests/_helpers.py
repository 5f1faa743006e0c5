"""Helpers shared by the tests: running the command, skipping without privileges."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run_cli(
    *args: str, stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m netproto ARGS`` in a subprocess and capture its text output."""
    return subprocess.run(
        [sys.executable, "-m", "netproto", *args],
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def installed_script(name: str) -> str | None:
    """The path of console script *name* installed beside this Python, if any."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def root_skip_reason() -> str | None:
    """Why a test that needs root (raw sockets, namespaces, ports < 1024) cannot run, or None."""
    if os.geteuid() != 0:
        return "needs root (raw sockets, network namespaces or privileged ports)"
    return None


def tool_skip_reason(tool: str) -> str | None:
    """Why a test that uses system tool *tool* as a peer cannot run, or None."""
    if shutil.which(tool) is None:
        return f"{tool} is not installed"
    return None
