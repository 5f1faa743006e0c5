"""
What every ``netproto`` command shares, from the user's side: host texts
that look like addresses but are not one are refused before any lookup.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHostnameResolver
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from netproto.cli import CommandError, build_parser, run_command
from tests._fakes import UDPMemoryReactor

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

    def test_refused_before_any_lookup(self) -> None:
        """
        Each command exits 1 with one line saying what is wrong with the text
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
                    self.assertEqual(failure.value.status, 1, message)
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
        daytime and echo (usage, 2), head's HOST:PORT and URL forms (1) and
        the lookups' --server (usage); nothing connects and nothing is asked.
        """
        for argv, status in (
            (("daytime", "::1:1313"), 2),
            (("echo", "--udp", "::1:1313", "x"), 2),
            (("head", "::1:1313"), 1),
            (("head", "http://::1:1313/"), 1),
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
        self.assertEqual(status, 2)
        self.assertIn("did you mean [::1]:5353?", err.getvalue())
