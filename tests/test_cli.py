"""
What every ``netproto`` command shares, from the user's side: host texts
that look like addresses but are not one are refused before any lookup.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHostnameResolver
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from netproto.cli import CommandError, build_parser, run_command
from tests._fakes import UDPMemoryReactor
from tests._helpers import run_here

MALFORMED = ("300.1.1.1", "1.2.3", "127.1", "1.2.3.4.5", "::1:zz", "fe80::1%")
"""Texts that look like addresses and are not one: never names, never looked up."""


@implementer(IHostnameResolver)
class RecordingResolver:
    """A system resolver that records every name it is asked for, and finds none."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        self.asked.append(hostName)
        resolutionReceiver.resolutionBegan(None)
        resolutionReceiver.resolutionComplete()
        return resolutionReceiver


class RecordingReactor(UDPMemoryReactor):
    """A memory reactor whose ``nameResolver`` records; thread pools are refused."""

    def __init__(self) -> None:
        super().__init__()
        self.nameResolver = RecordingResolver()

    def getThreadPool(self) -> Any:
        raise AssertionError("a lookup went to the system's getaddrinfo")


def run_in_memory(reactor: RecordingReactor, *argv: str) -> Deferred[int]:
    """Run the command *argv* on *reactor*, in this process, as ``netproto`` would."""
    args: argparse.Namespace = build_parser().parse_args(list(argv))
    return Deferred.fromCoroutine(args.run(reactor, args))


class MalformedHostTests(SynchronousTestCase):
    """``300.1.1.1`` and the like, given to every command that takes a host."""

    COMMANDS = (
        ("daytime", "{host}"),
        ("daytime", "--udp", "{host}"),
        ("echo", "{host}", "x"),
        ("echo", "--udp", "{host}", "x"),
        ("head", "{host}"),
        ("head", "http://{host}/"),
        ("ping", "-c", "1", "{host}"),
        ("resolve", "{host}"),
        ("lookup-host", "{host}"),
        ("resolve", "--server", "127.0.0.1:1", "{host}"),
    )

    STATUS = {"resolve": 2, "lookup-host": 2, "head": 3, "ping": 2}
    """
    The status of each command for such a text, as its classic tool would
    exit: getent's "not found", curl's "malformed URL", iputils' "other
    error"; 1 for the others.
    """

    def test_refused_before_any_lookup(self) -> None:
        """
        Each command fails (its own status) with one line saying what is wrong with the text
        and that it was not looked up ("cannot resolve" would say it was); the
        system resolver, getaddrinfo and DNS (a server on a closed port, and a
        reactor that would record the query) are never asked.
        """
        for host in MALFORMED:
            for command in self.COMMANDS:
                if "{host}" in command[-1] and command[0] == "head" and "://" in command[-1]:
                    if ":" in host:
                        continue  # an IPv6 literal in a URL is bracketed: tested below
                argv = [part.format(host=host) for part in command]
                with self.subTest(argv=argv):
                    reactor = RecordingReactor()
                    failure = self.failureResultOf(run_in_memory(reactor, *argv), CommandError)
                    message = str(failure.value)
                    self.assertEqual(failure.value.status, self.STATUS.get(command[0], 1), message)
                    self.assertEqual(failure.value.kind, "invalid", message)
                    self.assertTrue(message.startswith(f"{host}: not a valid IPv"), message)
                    if not (command[0] == "head" and ":" in host):
                        # (head refuses a bare IPv6 text as a target, before any lookup.)
                        self.assertTrue(message.endswith("; not looked up as a host name"), message)
                    self.assertNotIn("cannot resolve", message)
                    self.assertEqual(reactor.nameResolver.asked, [])
                    self.assertEqual(reactor.udpPorts, {})
                    self.assertEqual(reactor.tcpClients, [])

    def test_ipv6_with_port_unbracketed(self) -> None:
        """
        ``::1:1313`` (a valid address, but most likely ``[::1]:1313``) is
        refused with "did you mean [::1]:1313?" by every HOST:PORT parser:
        daytime and echo (usage, 2), head's HOST:PORT and URL forms (curl's
        3, malformed URL) and the lookups' --server (usage: getent's 1);
        nothing connects and nothing is asked.
        """
        for argv, status in (
            (("daytime", "::1:1313"), 2),
            (("echo", "--udp", "::1:1313", "x"), 2),
            (("head", "::1:1313"), 3),
            (("head", "http://::1:1313/"), 3),
        ):
            with self.subTest(argv=argv):
                reactor = RecordingReactor()
                failure = self.failureResultOf(run_in_memory(reactor, *argv), CommandError)
                self.assertEqual(failure.value.status, status)
                self.assertIn("did you mean [::1]:1313?", str(failure.value))
                self.assertEqual(reactor.tcpClients, [])
                self.assertEqual(reactor.udpPorts, {})
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = run_command(["resolve", "--server", "::1:5353", "localhost"])
        self.assertEqual(status, 1)
        self.assertIn("did you mean [::1]:5353?", err.getvalue())


BOOT = """\
import sys, _signal
from netproto.__main__ import _interrupted, main
_signal.signal(_signal.SIGINT, _interrupted)
sys.argv = ["netproto", *sys.argv[1:]]
print("go", flush=True)
main()
"""
"""
``netproto`` as the console script runs it, past the interpreter's own
start: it installs the handler ``main()`` installs first, says "go", then runs
``main()``. A signal after "go" lands in netproto's code, never in the
interpreter's start-up (where no program can handle it).
"""


def _hanging_listener(case: SynchronousTestCase) -> int:
    """A loopback port whose accept queue is full: a connect to it stays in SYN-SENT."""
    import socket
    import time

    server = socket.socket()
    case.addCleanup(server.close)
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port: int = server.getsockname()[1]
    for _ in range(3):
        filler = socket.socket()
        case.addCleanup(filler.close)
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
    time.sleep(0.1)
    return port


def _syn_sent(pid: int) -> bool:
    """Whether process *pid* has a TCP socket in SYN-SENT (connecting)."""
    import os

    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return any(row[3] == "02" and row[9] in inodes for row in rows)


class InterruptTests(SynchronousTestCase):
    """Ctrl-C (a real SIGINT) at any moment of ``netproto daytime``: exit 130, one line."""

    skip = None if os.path.exists("/proc/net/tcp") else "needs Linux's /proc/net/tcp"

    def interrupt(self, port: int, delay: float | None, *options: str) -> tuple[int, str, str]:
        """Start the command, SIGINT it *delay* s after "go" (None: once it is connecting)."""
        import signal
        import subprocess
        import sys
        import time

        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                BOOT,
                "daytime",
                *options,
                "--timeout",
                "20",
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.addCleanup(process.kill)
        assert process.stdout is not None
        self.assertEqual(process.stdout.readline(), "go\n")
        if delay is None:
            deadline = time.monotonic() + 20
            while not _syn_sent(process.pid):
                self.assertLess(time.monotonic(), deadline, "the command never connected")
                time.sleep(0.002)
        else:
            time.sleep(delay)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
        return process.returncode, out, err

    def test_while_starting(self) -> None:
        """
        SIGINT every 15 ms over the first 0.45 s (modules importing, the
        arguments parsed, the reactor starting, the command importing its own
        modules and connecting): always status 130 and one line, never a
        ``KeyboardInterrupt`` or ``ReactorNotRunning`` traceback, never a
        failure made of the interruption ("connection lost").
        """
        port = _hanging_listener(self)
        seen = set()
        for step in range(30):
            status, out, err = self.interrupt(port, step * 0.015)
            with self.subTest(delay=step * 0.015):
                self.assertEqual((status, out), (130, ""), err)
                self.assertIn(err, ("netproto: interrupted\n", "netproto daytime: interrupted\n"))
            seen.add(err)
        self.assertIn("netproto: interrupted\n", seen)

    def test_while_connecting(self) -> None:
        """
        SIGINT while the TCP connect is under way, a dozen times, a few
        milliseconds apart: the connect is cancelled, status 130, one line.
        """
        port = _hanging_listener(self)
        for attempt in range(12):
            with self.subTest(attempt=attempt):
                status, out, err = self.interrupt(port, None)
                self.assertEqual((status, out, err), (130, "", "netproto daytime: interrupted\n"))

    def test_json(self) -> None:
        """With --json, an interrupted command says so on stdout too: one error object."""
        port = _hanging_listener(self)
        status, out, err = self.interrupt(port, None, "--json")
        self.assertEqual((status, err), (130, "netproto daytime: interrupted\n"))
        self.assertEqual(
            json.loads(out), {"error": {"kind": "interrupted", "message": "interrupted"}}
        )

    def test_signal_while_the_command_starts(self) -> None:
        """
        A command that is interrupted before its first ``await`` (while it
        imports its modules) and then connects: the connect is cancelled as
        soon as the command yields, status 130, nothing else said. (The
        reactor used to be stopped under it instead: the aborted connect failed,
        "Can't stop reactor that isn't running", status 1.)
        """
        import subprocess
        import sys

        port = _hanging_listener(self)
        program = f"""\
import os, signal, sys
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from netproto.cli._main import _drive

async def command(reactor, args):
    os.kill(os.getpid(), signal.SIGINT)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", {port}), Protocol())
    return 0

sys.exit(_drive(command, None))
"""
        for signal_name in ("SIGINT", "SIGTERM"):
            with self.subTest(signal=signal_name):
                result = subprocess.run(
                    [sys.executable, "-c", program.replace("SIGINT", signal_name)],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                )
                self.assertEqual((result.returncode, result.stderr), (130, ""))


class WordingTests(SynchronousTestCase):
    """What users read says what they can know."""

    def test_no_seed(self) -> None:
        """
        "seed" (the name of the programs netproto grew from, which users never
        saw) appears in no --help text, not the README and no guide; the
        sweep's ``--seed`` option (the number that picks its probing order, a
        name zmap and masscan users know) is the one use allowed.
        """
        import re
        from pathlib import Path

        from netproto import tap

        parser = build_parser()
        texts = {
            "netproto --help": parser.format_help(),
            "twistd netproto --help": str(tap.Options()),
        }
        for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
            for name, sub in action.choices.items():
                texts[f"netproto {name} --help"] = sub.format_help()
        root = Path(__file__).resolve().parent.parent
        for path in [root / "README.md", *sorted((root / "docs").rglob("*.rst"))]:
            texts[str(path.relative_to(root))] = path.read_text()
        for where, text in texts.items():
            with self.subTest(where=where):
                self.assertIsNone(re.search(r"(?<!--)\bseeds?\b", text, re.I))


class ParserTests(TestCase):
    """Usage errors come from the subcommand's own parser; numbers are never options."""

    async def test_unknown_option_named_by_its_command(self) -> None:
        """An option the command does not have is the command's usage error, not netproto's."""
        status, out, err = await run_here("ping", "-Z", "127.0.0.1")
        self.assertEqual((status, out), (2, ""))
        self.assertEqual(
            err, "netproto ping: unrecognized arguments: -Z (see 'netproto ping --help')\n"
        )
        status, out, _ = await run_here("daytime", "--json", "--bogus", "127.0.0.1:1")
        self.assertEqual(status, 2)
        self.assertEqual(
            json.loads(out),
            {"error": {"kind": "usage", "message": "unrecognized arguments: --bogus"}},
        )

    async def test_negative_numbers(self) -> None:
        """
        ``-c -1`` is a count (refused as such), ``-4`` is still the option, and
        a negative operand is an operand.
        """
        status, _, err = await run_here("ping", "-c", "-1", "127.0.0.1")
        self.assertEqual((status, err), (2, "netproto ping: -c -1: COUNT must be at least 1\n"))
        status, _, err = await run_here("ping", "-4", "-W", "-0.5", "127.0.0.1")
        self.assertEqual(status, 2)
        self.assertIn("-W -0.5: TIMEOUT", err)
        status, _, err = await run_here("mask", "1.2.3.4", "-1", "32")
        self.assertEqual(
            (status, err), (1, "netproto mask: leading ones must be between 0 and 32, not -1\n")
        )
        status, _, err = await run_here("head", "-4", "-m", "1", "http://[::1]:1/")
        self.assertEqual((status, err), (6, "netproto head: ::1 is an IPv6 address, not IPv4\n"))
