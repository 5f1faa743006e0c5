"""The installed package: console scripts and the twistd plugin."""

from __future__ import annotations

import subprocess
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import netproto
from tests._helpers import installed_script


class PackagingTests(SynchronousTestCase):
    """What ``pip install`` puts on the machine works."""

    def test_twistd_lists_plugin(self) -> None:
        """The installed ``twistd --help`` lists the netproto plugin."""
        twistd = installed_script("twistd")
        if twistd is None:
            self.skipTest("twistd is not installed")
        result = subprocess.run(
            [twistd, "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"\n\s+netproto\s+\S")

    def test_console_script(self) -> None:
        """The installed ``netproto`` script runs and reports its version."""
        script = installed_script("netproto")
        if script is None:
            self.skipTest("the netproto console script is not installed")
        result = subprocess.run(
            [script, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
        self.assertEqual(
            (result.returncode, result.stdout.strip()), (0, f"netproto {netproto.__version__}")
        )

    def test_no_twisted_init(self) -> None:
        """The checkout ships no twisted/__init__.py that would shadow Twisted's own."""
        root = Path(__file__).resolve().parent.parent
        self.assertFalse((root / "twisted" / "__init__.py").exists())
        self.assertFalse((root / "twisted" / "plugins" / "__init__.py").exists())
