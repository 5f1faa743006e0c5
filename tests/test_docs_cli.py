"""
``docs/cli.rst``, the man page and the shell completions are made from the
command's parsers (``docs/_ext/netproto_cli.py``, run by the docs build):
each lists every subcommand, and every subcommand has its exit-status table.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from types import ModuleType

from twisted.trial.unittest import SynchronousTestCase

from tests._helpers import run_cli, tool_skip_reason

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("netproto_cli", DOCS / "_ext" / "netproto_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tools_skip_reason() -> str | None:
    """Why the man page and completions cannot be made here (docs dependencies missing)."""
    for module in ("shtab", "argparse_manpage"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[docs]')"
    return None


class ProductsTests(SynchronousTestCase):
    """What the docs build writes: the man page and the completions."""

    skip = _tools_skip_reason()

    def setUp(self) -> None:
        self.extension = _extension()
        self.names = list(self.extension.subcommands())
        self.products = self.extension.products()

    def test_every_subcommand(self) -> None:
        """The man page, the bash and the zsh completion each name every subcommand."""
        self.assertIn("lookup-mx", self.names)
        man = self.products["man/netproto.1"]
        bash = self.products["completion/netproto.bash"]
        zsh = self.products["completion/_netproto"]
        for name in self.names:
            with self.subTest(name=name):
                escaped = name.replace("-", "\\-")
                self.assertIn(f".SH COMMAND \\fI\\,'netproto {escaped}'\\/\\fR", man)
                self.assertIn(f".SS netproto {name}\n", man)
                self.assertRegex(bash, rf"\b{re.escape(name)}\b")
                self.assertRegex(zsh, rf"\b{re.escape(name)}\b")
        # An option of a subcommand reaches the completion too.
        self.assertIn("--write-out", bash)

    def test_man_page_reads(self) -> None:
        """man(1) formats the page without complaint, exit statuses included."""
        reason = tool_skip_reason("man")
        if reason:
            raise self.skipTest(reason)
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(self.products["man/netproto.1"])
        result = subprocess.run(
            ["man", "-l", path], capture_output=True, text=True, timeout=60, check=False
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("EXIT STATUS", result.stdout)


class ReferenceTests(SynchronousTestCase):
    """docs/cli.rst renders every subcommand from its parser; --help shows the same table."""

    def test_every_subcommand_rendered(self) -> None:
        """cli.rst has one ``netproto-command`` directive per subcommand, no more."""
        if importlib.util.find_spec("docutils") is None:
            self.skipTest("docutils is not installed (pip install -e '.[docs]')")
        text = (DOCS / "cli.rst").read_text()
        rendered = re.findall(r"^\.\. netproto-command:: (\S+)$", text, re.M)
        self.assertEqual(sorted(rendered), sorted(_extension().subcommands()))

    def test_help_ends_with_exit_statuses(self) -> None:
        """``--help`` of a command ends with its table: curl's statuses for head."""
        result = run_cli("head", "--help")
        self.assertEqual(result.returncode, 0)
        tail = result.stdout[result.stdout.index("Exit status:") :]
        self.assertIn("    6  the host name does not resolve", tail)
        self.assertIn("   28  timeout", tail)
