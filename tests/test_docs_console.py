"""
Every console example in README.md and docs/ is either run here, run by a
named test module, or marked illustrative with the reason: a marker comment
right before each block says which (``.. console: ...`` in reStructuredText,
``<!-- console: ... -->`` in Markdown):

``run``
    This module runs every ``$`` command of the block, in order, in one
    shell in a scratch directory, and compares what it prints (standard
    output and error) with the lines shown. ``run with: COMMAND`` first
    starts COMMAND (a server, ``twistd ...``) and waits for its log to say
    it serves. Blocks run in a network namespace of their own, so the
    documented ports (1207, 1313, ...) are free and nothing leaves the
    machine; without root or ``unshare`` they skip.
``tested by tests/test_NAME.py``
    That module runs the block's commands (it must exist and name the file).
``illustrative: REASON``
    Shown, not run: timings, other machines, root-only set-ups...

Dates, times and durations in the output are compared by shape only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Block:
    """One console block: where it is, its marker, its lines (indentation removed)."""

    path: Path
    line: int
    marker: str | None
    lines: tuple[str, ...]

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def commands(self) -> list[tuple[str, list[str]]]:
        """Each ``$ command`` (continuation lines joined) with the lines shown after it."""
        found: list[tuple[str, list[str]]] = []
        lines = list(self.lines)
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("$ "):
                command = line[2:]
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command[:-1] + "\n" + lines[i]
                found.append((command, []))
            elif found:
                found[-1][1].append(line)
            i += 1
        return found


_RST = re.compile(
    r"(?:^\.\. console: (?P<marker>[^\n]*)\n\n)?^\.\. code-block:: console\n\n"
    r"(?P<body>(?:    [^\n]*\n|\n)+)",
    re.M,
)
_MD = re.compile(
    r"(?:^<!-- console: (?P<marker>.*?) -->\n)?^```console\n(?P<body>.*?)^```", re.M | re.S
)


def blocks() -> list[Block]:
    """Every console block of README.md and docs/ (the build output excluded)."""
    found = []
    rst = sorted(p for p in (ROOT / "docs").rglob("*.rst") if "_build" not in p.parts)
    sources = [ROOT / "README.md", *rst]
    for path in sources:
        text = path.read_text()
        pattern = _MD if path.suffix == ".md" else _RST
        for match in pattern.finditer(text):
            body = match.group("body").rstrip("\n").split("\n")
            if path.suffix == ".rst":
                body = [line[4:] for line in body]
            line = text.count("\n", 0, match.start("body"))
            found.append(Block(path, line, match.group("marker"), tuple(body)))
    return found


_SHAPES = (
    # ctime (daytime's default), ISO 8601 and RFC 2822 dates
    (re.compile(r"\b[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\b"), "<date>"),
    (
        re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d{4}|[+-]\d\d:\d\d|Z)?"),
        "<date>",
    ),
    (re.compile(r"\b\d+(?:\.\d+)? ?(?:ms|s)\b"), "<duration>"),
    (re.compile(r'("\w+_ms"): [\d.]+'), r"\1: <duration>"),
)


def shape(line: str) -> str:
    """*line* with its dates and durations replaced by placeholders."""
    for pattern, placeholder in _SHAPES:
        line = pattern.sub(placeholder, line)
    return line.rstrip()


def namespace_skip_reason() -> str | None:
    """Why blocks cannot run in a network namespace of their own here, or None."""
    if os.geteuid() != 0:
        return "needs root for a network namespace of its own (unshare -n)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip is not installed"
    return None


_MARK = "@@netproto-docs-command-{}@@"

_MARKER = r"^(run|run with: .+|tested by tests/test_\w+\.py|illustrative: .+)$"
"""The three kinds of marker."""


def script(block: Block, server: str | None) -> str:
    """The shell script that runs *block*'s commands, each output after a marker line."""
    parts = ["exec 2>&1", "ip link set lo up"]
    if server is not None:
        parts.append(f"{server} > server.log 2>&1 &")
        parts.append(
            "for i in $(seq 300); do grep -q 'netproto: .* on ' server.log 2>/dev/null && break;"
            " sleep 0.1; done"
        )
    parts.append("true")
    for number, (command, _shown) in enumerate(block.commands()):
        parts.append(f"__status=$?; printf '\\n{_MARK.format(number)}\\n'; (exit $__status)")
        parts.append(command)
    parts.append(f"printf '\\n{_MARK.format('end')}\\n'")
    if server is not None:
        parts.append("kill %1 2>/dev/null; wait")
    return "\n".join(parts) + "\n"


def run(test: SynchronousTestCase, block: Block, server: str | None) -> list[tuple[str, list[str]]]:
    """Run *block* in a scratch directory and network namespace: (command, printed lines)."""
    work = Path(test.mktemp()).resolve()
    work.mkdir(parents=True)
    (work / ".venv").symlink_to(Path(sys.prefix))
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    env.pop("NOTIFY_SOCKET", None)
    result = subprocess.run(
        ["unshare", "-n", "bash", "-c", script(block, server)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    # Each marker follows a newline of its own, so output without one stays apart.
    pieces = re.split(r"\n@@netproto-docs-command-(\d+|end)@@\n", result.stdout)
    printed: dict[str, list[str]] = {}
    for index in range(1, len(pieces) - 1, 2):
        printed[pieces[index]] = pieces[index + 1].rstrip("\n").split("\n")
    out = []
    for number, (command, _shown) in enumerate(block.commands()):
        lines = printed.get(str(number))
        if lines is None:
            raise AssertionError(f"{block.where()}: {command!r} did not run:\n{result.stdout}")
        out.append((command, [] if lines == [""] else lines))
    return out


class LedgerTests(SynchronousTestCase):
    """Each console block says how it is checked."""

    def test_every_block_marked(self) -> None:
        """No console block without a marker, and every marker is one of the three kinds."""
        found = blocks()
        self.assertGreater(len(found), 40)
        unmarked = [b.where() for b in found if b.marker is None]
        self.assertEqual(unmarked, [], "console blocks without a '.. console: ...' marker")
        for block in found:
            assert block.marker is not None
            with self.subTest(block=block.where()):
                self.assertRegex(
                    block.marker,
                    r"^(run|run with: .+|tested by tests/test_\w+\.py|illustrative: .+)$",
                )

    def test_tested_by_exists(self) -> None:
        """A ``tested by`` module exists and reads that document."""
        for block in blocks():
            if block.marker and block.marker.startswith("tested by "):
                with self.subTest(block=block.where()):
                    module = ROOT / block.marker.removeprefix("tested by ")
                    self.assertTrue(module.exists(), module)
                    text = module.read_text()
                    self.assertTrue(
                        block.path.name in text or block.path.stem in text,
                        f"{module.name} does not read {block.path.name}",
                    )


class RunTests(SynchronousTestCase):
    """The ``run`` blocks print what they show."""

    def test_run_blocks(self) -> None:
        """Every command of every ``run`` block prints the lines shown after it."""
        reason = namespace_skip_reason()
        if reason:
            self.skipTest(reason)
        runnable = [b for b in blocks() if b.marker and b.marker.startswith("run")]
        self.assertGreater(len(runnable), 5)
        failures = []
        for block in runnable:
            assert block.marker is not None
            server = block.marker.partition("run with: ")[2] or None
            for (command, shown), (_, printed) in zip(
                block.commands(), run(self, block, server), strict=True
            ):
                if [shape(line) for line in printed] != [shape(line) for line in shown]:
                    failures.append(
                        f"{block.where()}: $ {command}\n  shown:   {shown}\n  printed: {printed}"
                    )
        self.assertEqual(failures, [], "\n".join(failures))

    def test_shape(self) -> None:
        """Dates and durations are placeholders; everything else stays."""
        self.assertEqual(shape("Fri Nov 27 00:51:47 2026"), "<date>")
        self.assertEqual(shape("time=0.05 ms rtt 12 ms"), "time=<duration> rtt <duration>")
        self.assertEqual(shape("2026-11-27T00:51:45+0000 [-] x"), "<date> [-] x")
        self.assertEqual(shape('{"time_ms": 0.623}'), '{"time_ms": <duration>}')
        self.assertEqual(shape("port 1207"), "port 1207")
