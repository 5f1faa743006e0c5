"""
``netproto traceroute`` run as a user runs it: traceroute(8)'s output on
loopback side by side with Debian's traceroute, ``--json``, usage errors in one
line, failures, Ctrl-C. Only loopback, or a fresh namespace's, is probed.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto.cli import CommandError, build_parser
from tests._dns_server import system_files_skip_reason
from tests._helpers import root_skip_reason, run_cli, tool_skip_reason
from tests._traceroute_netns import normalized
from tests.test_ping_netns import in_netns, netns_skip_reason, netproto


def peer(*args: str) -> subprocess.CompletedProcess[str]:
    """Debian's traceroute with *args*."""
    return subprocess.run(
        ["traceroute", *args], capture_output=True, text=True, timeout=30, check=False
    )


def names_skip_reason() -> str | None:
    """Why 127.0.0.1 must not be given to the system resolver here (it might ask DNS)."""
    reason = system_files_skip_reason("localhost")
    if reason:
        return reason
    from netproto.lookup import HostsFile

    if not HostsFile.read("/etc/hosts").names(ipaddress.ip_address("127.0.0.1")):
        return "/etc/hosts does not list 127.0.0.1: the system would ask DNS for its name"
    return None


class LikeTracerouteTests(SynchronousTestCase):
    """One hop to loopback: what traceroute(8) prints, times aside."""

    skip = tool_skip_reason("traceroute")

    def assert_like_peer(self, *args: str) -> None:
        # Adaptive waits off for both tools (-w MAX,0,0): on loopback a hop's
        # first answer takes microseconds, and three times that is no wait at
        # all for its other probes on a busy machine. What answers is compared.
        args = ("-w", "5,0,0", *args)
        ours, theirs = run_cli("traceroute", *args), peer(*args)
        self.assertEqual(ours.returncode, 0, ours.stderr)
        self.assertEqual(normalized(ours.stdout), normalized(theirs.stdout))
        self.assertEqual(len(ours.stdout.splitlines()), 2)

    def test_udp(self) -> None:
        """-n 127.0.0.1 and -n ::1, and a packet length."""
        self.assert_like_peer("-n", "127.0.0.1")
        self.assert_like_peer("-n", "::1")
        self.assert_like_peer("-n", "-q", "2", "127.0.0.1", "100")

    def test_icmp(self) -> None:
        """-I -n 127.0.0.1 (as root: a raw socket; else skipped unless ping sockets are allowed)."""
        if root_skip_reason():
            raise self.skipTest(root_skip_reason())
        self.assert_like_peer("-I", "-n", "127.0.0.1")

    def test_names(self) -> None:
        """Without -n, 127.0.0.1 is shown as its /etc/hosts name."""
        reason = names_skip_reason()
        if reason:
            raise self.skipTest(reason)
        self.assert_like_peer("127.0.0.1")


class OutputTests(SynchronousTestCase):
    """The text and JSON forms."""

    def test_text(self) -> None:
        """The header and the hop line, three times with three decimals."""
        result = run_cli("traceroute", "-n", "127.0.0.1")
        self.assertEqual(result.returncode, 0, result.stderr)
        header, line = result.stdout.splitlines()
        self.assertEqual(
            header, "traceroute to 127.0.0.1 (127.0.0.1), 30 hops max, 60 byte packets"
        )
        self.assertRegex(line, r"^ 1  127\.0\.0\.1  \d+\.\d{3} ms  \d+\.\d{3} ms  \d+\.\d{3} ms$")

    def test_json(self) -> None:
        """--json: one object per hop, then the summary, with stable keys."""
        result = run_cli("traceroute", "--json", "-n", "-q", "2", "::1")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        hop, summary = (json.loads(line) for line in result.stdout.splitlines())
        self.assertEqual(set(hop), {"ttl", "probes", "responders", "marks", "reached"})
        self.assertEqual((hop["ttl"], hop["marks"], hop["reached"]), (1, [], True))
        self.assertEqual(
            [set(p) for p in hop["probes"]],
            [{"address", "rtt_ms", "mark", "icmp_type", "icmp_code"}] * 2,
        )
        self.assertEqual([p["icmp_type"] for p in hop["probes"]], [1, 1])
        self.assertEqual(
            [(r["address"], r["name"], len(r["rtts_ms"])) for r in hop["responders"]],
            [("::1", None, 2)],
        )
        self.assertEqual(
            {k: summary[k] for k in ("summary", "host", "target", "method", "hops", "reached")},
            {
                "summary": True,
                "host": "::1",
                "target": "::1",
                "method": "udp",
                "hops": 1,
                "reached": True,
            },
        )
        self.assertEqual(
            set(summary),
            {
                "summary",
                "host",
                "target",
                "method",
                "socket",
                "first_hop",
                "max_hops",
                "probes",
                "packet_bytes",
                "hops",
                "reached",
                "ignored",
                "interrupted",
                "time_ms",
            },
        )
        self.assertEqual((summary["packet_bytes"], summary["probes"]), (80, 2))

    def test_not_reached(self) -> None:
        """A UDP service on the probed port answers nothing: * and exit status 1."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
            listener.bind(("127.0.0.1", 0))
            port = str(listener.getsockname()[1])
            result = run_cli(
                "traceroute", "-n", "-U", "-p", port, "-m", "1", "-w", "0.2", "127.0.0.1"
            )
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout.splitlines()[1], " 1  * * *")


class UsageTests(SynchronousTestCase):
    """Bad options: one line on standard error, exit status 2, nothing sent."""

    def test_usage_errors(self) -> None:
        """The command: exit status 2, one line on standard error, nothing on standard output."""
        for args, words in [
            (["-w", "abc", "127.0.0.1"], "-w"),
            (["-q", "11", "127.0.0.1"], "-q 11"),
            (["127.0.0.1", "27"], "PACKETLEN"),
            (["-6", "127.0.0.1"], "not an IPv6 address"),
            (["-s", "::1", "127.0.0.1"], "-s ::1"),
            ([], "HOST"),
        ]:
            result = run_cli("traceroute", *args)
            self.assertEqual(result.returncode, 2, (args, result.stderr))
            self.assertEqual(len(result.stderr.splitlines()), 1, (args, result.stderr))
            self.assertIn(words, result.stderr, args)
            self.assertNotIn("Traceback", result.stderr)
            self.assertEqual(result.stdout, "", args)

    def test_option_checks(self) -> None:
        """Every option out of range is refused before any socket, naming the option."""
        from netproto.cli._traceroute import _check, _payload

        def refusal(*argv: str) -> str:
            try:
                args = build_parser().parse_args(["traceroute", *argv])
                _check(args)
                _payload(args, 6 if ":" in args.host else 4)
            except CommandError as e:
                self.assertEqual(e.status, 2)
                return str(e)
            except Exception as e:  # the parser's own usage error (exit status 2)
                return str(e)
            raise AssertionError(f"{argv} accepted")

        for args, words in [
            (["-q", "0", "127.0.0.1"], "-q 0"),
            (["-m", "0", "127.0.0.1"], "-m 0"),
            (["-m", "256", "127.0.0.1"], "-m 256"),
            (["-f", "5", "-m", "4", "127.0.0.1"], "-f 5"),
            (["-N", "0", "127.0.0.1"], "-N 0"),
            (["-p", "0", "127.0.0.1"], "-p 0"),
            (["-p", "65530", "127.0.0.1"], "-p 65530"),
            (["-I", "-p", "80", "127.0.0.1"], "-p"),
            (["-w", "0", "127.0.0.1"], "-w"),
            (["-w", "5,-1", "127.0.0.1"], "HERE"),
            (["-w", "5,3,x", "127.0.0.1"], "NEAR"),
            (["-w", "1,2,3,4", "127.0.0.1"], "MAX[,HERE[,NEAR]]"),
            (["-w", "4000", "127.0.0.1"], "-w 4000"),
            (["::1", "47"], "PACKETLEN"),
            (["127.0.0.1", "70000"], "PACKETLEN"),
            (["-i", "no-such-device", "127.0.0.1"], "-i"),
            (["-I", "-U", "127.0.0.1"], "not allowed"),
        ]:
            self.assertIn(words, refusal(*args), args)

    def test_wait_forms(self) -> None:
        """-w takes MAX, MAX,HERE or MAX,HERE,NEAR, with commas or slashes."""
        for text, expected in [
            ("2", (2.0, 3.0, 10.0)),
            ("2,1", (2.0, 1.0, 10.0)),
            ("2/0/0", (2.0, 0.0, 0.0)),
        ]:
            args = build_parser().parse_args(["traceroute", "-w", text, "127.0.0.1"])
            self.assertEqual(args.wait, expected, text)

    def test_bad_literal(self) -> None:
        """A malformed address is an error, never a name sent to a resolver: exit 1."""
        result = run_cli("traceroute", "300.1.1.1")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)

    def test_not_local_source(self) -> None:
        """-s with an address this host does not have: one line, exit 1."""
        result = run_cli("traceroute", "-n", "-s", "127.0.0.1", "::1")
        self.assertEqual(result.returncode, 2, result.stderr)
        result = run_cli("traceroute", "-n", "-s", "192.0.2.1", "127.0.0.1")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr, "netproto traceroute: -s 192.0.2.1: not a local address\n")

    def test_help(self) -> None:
        """--help describes the marks, the socket kinds and the exit statuses."""
        result = run_cli("traceroute", "--help")
        self.assertEqual(result.returncode, 0)
        for words in ("!H", "!X", "ping_group_range", "Exit status", "130", "Paris"):
            self.assertIn(words, result.stdout)


class FailureTests(SynchronousTestCase):
    """Failures once the command runs, in a fresh namespace (only its loopback exists)."""

    skip = netns_skip_reason()

    def test_no_route(self) -> None:
        """A destination with no route: the header, then one line, exit 1."""
        result = in_netns(netproto("traceroute", "-n", "10.9.9.9"))
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stderr,
            "netproto traceroute: cannot send probes to 10.9.9.9: Network is unreachable\n",
        )
        self.assertEqual(len(result.stdout.splitlines()), 1)


class InterruptTests(TestCase):
    """Ctrl-C while a probe waits (a UDP service on the port swallows it)."""

    def listener(self) -> tuple[socket.socket, str]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        return sock, str(sock.getsockname()[1])

    def test_interrupt(self) -> None:
        """SIGINT once the header is out: exit status 130, one line on standard error."""
        _, port = self.listener()
        command = ["traceroute", "-n", "-U", "-p", port, "-w", "30", "127.0.0.1"]
        process = subprocess.Popen(
            [sys.executable, "-m", "netproto", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            header = process.stdout.readline()
            os.kill(process.pid, signal.SIGINT)
            out, err = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        self.assertTrue(header.startswith("traceroute to 127.0.0.1"), header)
        self.assertEqual(
            (process.returncode, err, out), (130, "netproto traceroute: interrupted\n", "")
        )

    async def test_interrupted_summary(self) -> None:
        """Cancelled (as Ctrl-C cancels it), the command stops and says so in its JSON summary."""
        sock, port = self.listener()
        args = build_parser().parse_args(
            ["traceroute", "--json", "-n", "-U", "-p", port, "-w", "30", "127.0.0.1"]
        )
        output = io.StringIO()
        self.patch(sys, "stdout", output)
        running = Deferred.fromCoroutine(args.run(reactor, args))
        sock.setblocking(False)
        while True:
            try:
                sock.recv(2048)
                break
            except BlockingIOError:
                await deferLater(reactor, 0.01)
        running.cancel()
        self.assertEqual(await running, 130)
        summary = json.loads(output.getvalue().splitlines()[-1])
        self.assertEqual((summary["interrupted"], summary["reached"]), (True, False))
        self.assertEqual(summary["method"], "paris")
