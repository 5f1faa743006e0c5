"""
The lookups guide tells the truth: its zone file, served by ``twistd dns`` on
loopback, and its hosts file give, command for command, the output the guide
shows (on a free port in place of the guide's 5353).

Commands that go through the system resolver are left out: their output
depends on the machine's own hosts file.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from tests._dns_server import free_port, start_twistd_dns
from tests._helpers import installed_script

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "lookups.rst"


def _console_blocks(text: str) -> list[list[str]]:
    blocks = re.findall(r"\.\. code-block:: console\n\n((?:    .*\n|\n)+)", text)
    return [[line[4:] for line in block.rstrip("\n").split("\n")] for block in blocks]


def _file_shown(blocks: list[list[str]], name: str) -> str:
    """The content the guide shows for ``$ cat NAME``."""
    for lines in blocks:
        for i, line in enumerate(lines):
            if line == f"$ cat {name}":
                body = []
                for rest in lines[i + 1 :]:
                    if rest.startswith("$ "):
                        break
                    body.append(rest)
                return "\n".join(body) + "\n"
    raise AssertionError(f"the guide shows no 'cat {name}'")


def _examples(blocks: list[list[str]]) -> list[tuple[str, list[str]]]:
    """Each ``$ netproto ...`` command and the lines the guide shows after it."""
    found = []
    for lines in blocks:
        for i, line in enumerate(lines):
            if line.startswith("$ netproto "):
                shown = []
                for rest in lines[i + 1 :]:
                    if rest.startswith("$ "):
                        break
                    shown.append(rest)
                found.append((line[2:], shown))
    return found


class GuideTests(TestCase):
    """docs/guides/lookups.rst."""

    async def test_examples_are_real(self) -> None:
        """
        Every --server, --hosts and lookup-port example prints what the guide
        shows, and so does every example without a name to look up (literals,
        malformed literals, ``::1:1313``), which the system never sees.
        """
        twistd = installed_script("twistd")
        if twistd is None:
            raise self.skipTest("twistd is not installed")
        blocks = _console_blocks(GUIDE.read_text())
        work = Path(self.mktemp()).resolve()
        work.mkdir()
        (work / "example.test.zone").write_text(_file_shown(blocks, "example.test.zone"))
        (work / "hosts").write_text(_file_shown(blocks, "hosts"))
        port = await start_twistd_dns(
            self, twistd, str(work / "example.test.zone"), "web.example.test"
        )
        closed = free_port()
        examples = [
            (c, s)
            for c, s in _examples(blocks)
            if "--server" in c or "--hosts" in c or " lookup-port " in c or "localhost" not in c
        ]
        self.assertGreater(len(examples), 20)
        for command, shown in examples:
            with self.subTest(command=command):
                run = command.replace(":5353", f":{port}").replace(":5354", f":{closed}")
                args = shlex.split(run)[1:]
                out, err, _status = await getProcessOutputAndValue(
                    sys.executable,
                    ["-m", "netproto", *args],
                    env=dict(os.environ),
                    path=str(work),
                    reactor=reactor,
                )
                text = (out + err).decode().replace(f":{port}", ":5353")
                text = text.replace(f":{closed}", ":5354")
                self.assertEqual(text.rstrip("\n").split("\n"), shown)
