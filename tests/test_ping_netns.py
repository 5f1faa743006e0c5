"""
netproto ping inside network namespaces the tests create (``unshare -n``):
unprivileged ping sockets (``net.ipv4.ping_group_range`` opened only there),
the explanation when no ICMP socket is allowed, and forged replies injected
with an ``IPPROTO_RAW`` socket while the kernel is told not to answer.
Nothing leaves the namespaces: only their own loopback is pinged.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests._helpers import root_skip_reason, tool_skip_reason

ROOT = Path(__file__).resolve().parent.parent
OPEN_RANGE = "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range"
NO_RAW = "setpriv --bounding-set=-net_raw"


def netns_skip_reason() -> str | None:
    """Why namespace tests cannot run here, or None."""
    reason = root_skip_reason()
    if reason:
        return reason
    for tool in ("unshare", "ip", "setpriv"):
        reason = tool_skip_reason(tool)
        if reason:
            return reason
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return "unshare -n is not permitted here"
    return None


def in_netns(script: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a shell *script* in a fresh network namespace whose loopback is up."""
    shell = shutil.which("sh") or "/bin/sh"
    return subprocess.run(
        ["unshare", "-n", shell, "-c", f"ip link set lo up && {script}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def netproto(*args: str) -> str:
    """The shell words running ``python -m netproto ARGS``."""
    return " ".join([sys.executable, "-m", "netproto", *args])


@cache
def forged_outcome() -> dict[str, Any]:
    """Run the forged-reply scenarios once, in their own namespace."""
    result = subprocess.run(
        ["unshare", "-n", sys.executable, str(ROOT / "tests" / "_ping_netns.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise AssertionError(f"scenario program failed: {result.stderr[-2000:]}")
    outcome: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return outcome


class ForgedReplyTests(SynchronousTestCase):
    """Replies and errors forged on a namespace's loopback, the kernel silent."""

    skip = netns_skip_reason()

    def kinds(self, scenario: str) -> list[str]:
        return [r[0] for r in forged_outcome()[scenario]["results"]]

    def test_silence_is_loss(self) -> None:
        """With the kernel not answering, a probe times out: the forging works, nothing leaks."""
        outcome = forged_outcome()["silence"]
        self.assertEqual((outcome["transmitted"], outcome["received"]), (1, 0))
        self.assertEqual(self.kinds("silence"), ["timeout"])

    def test_good_reply(self) -> None:
        """A correct forged reply is credited, with its source and TTL."""
        outcome = forged_outcome()["good"]
        self.assertEqual(outcome["received"], 1)
        self.assertEqual(outcome["results"][0], ["reply", 1, "127.0.0.2", None, 64])

    def test_wrong_source(self) -> None:
        """A reply from another address than the target is not credited."""
        outcome = forged_outcome()["wrong_source"]
        self.assertEqual((outcome["received"], outcome["damaged"]), (0, 0))
        self.assertEqual(outcome["not_ours"], 1)
        self.assertEqual(self.kinds("wrong_source"), ["timeout"])

    def test_bad_checksum(self) -> None:
        """A reply with a bad ICMP checksum reaches the raw socket, is counted damaged only."""
        outcome = forged_outcome()["bad_checksum"]
        self.assertEqual((outcome["received"], outcome["damaged"]), (0, 1))
        self.assertEqual(self.kinds("bad_checksum"), ["damaged", "timeout"])

    def test_ip_options(self) -> None:
        """A reply with 16 bytes of IP options (IHL 9) is parsed at IHL*4 and credited."""
        outcome = forged_outcome()["ip_options"]
        self.assertEqual(outcome["received"], 1)

    def test_duplicates(self) -> None:
        """Three copies of one reply: received once, two duplicates."""
        outcome = forged_outcome()["duplicates"]
        self.assertEqual((outcome["received"], outcome["duplicates"]), (2, 2))
        self.assertEqual(self.kinds("duplicates"), ["reply", "duplicate", "duplicate", "reply"])

    def test_rapid_forged(self) -> None:
        """
        -i 0 back to back: replies from another source, with the next sequence
        number or a bad checksum are never credited; a second good copy is a
        duplicate of its own probe.
        """
        outcome = forged_outcome()["rapid"]
        self.assertEqual(
            (outcome["transmitted"], outcome["received"], outcome["damaged"]), (3, 3, 3)
        )
        # The last probe's second copy comes after the ping has its count: not read.
        self.assertEqual(outcome["duplicates"], 2)
        self.assertEqual(outcome["not_ours"], 6)
        self.assertEqual(
            [r[:2] for r in outcome["results"]],
            [[kind, n] for n in (1, 2, 3) for kind in ("damaged", "reply", "duplicate")][:-1],
        )

    def test_unreachable(self) -> None:
        """A Destination Host Unreachable quoting our request is reported as an error."""
        outcome = forged_outcome()["unreachable"]
        self.assertEqual((outcome["received"], outcome["errors"]), (0, 1))
        self.assertEqual(
            outcome["results"][0][:4], ["error", 1, "127.0.0.9", "Destination Host Unreachable"]
        )

    def test_same_identifier(self) -> None:
        """Two pingers with the same identifier and sequence: only the answered one is credited."""
        outcome = forged_outcome()["same_identifier"]
        self.assertTrue(outcome["same_wire_fields"])
        self.assertEqual(outcome["first"]["received"], 1)
        self.assertEqual(outcome["second"]["received"], 0)
        self.assertEqual([r[0] for r in outcome["second"]["results"]], ["timeout"])

    def test_late(self) -> None:
        """A reply after the timeout is late, not received; the next probe is unaffected."""
        outcome = forged_outcome()["late"]
        self.assertEqual((outcome["received"], outcome["late"]), (1, 1))
        self.assertEqual(self.kinds("late"), ["timeout", "late", "reply"])

    def test_ipv6(self) -> None:
        """ICMPv6 on ::1: forged replies credited, from the wrong source refused, errors matched."""
        outcome = forged_outcome()
        self.assertEqual(outcome["ipv6_silence"]["received"], 0)
        self.assertEqual(outcome["ipv6_good"]["results"], [["reply", 1, "::1", None, 64]])
        self.assertEqual(outcome["ipv6_wrong-source"]["received"], 0)
        self.assertEqual(outcome["ipv6_wrong-source"]["not_ours"], 1)
        unreachable = outcome["ipv6_unreachable"]
        self.assertEqual((unreachable["received"], unreachable["errors"]), (0, 1))
        self.assertEqual(
            unreachable["results"][0][:4], ["error", 1, "2001:db8::9", "Address unreachable"]
        )

    def test_dgram_reply_and_error_queue(self) -> None:
        """On a ping socket: replies credited once; errors read from the error queue."""
        good = forged_outcome()["dgram_good"]
        self.assertEqual(good["received"], 1)
        error = forged_outcome()["dgram_unreachable"]
        self.assertEqual(error["errors"], 1)
        self.assertEqual(
            error["results"][0][:4], ["error", 1, "127.0.0.9", "Destination Host Unreachable"]
        )


class UnprivilegedTests(SynchronousTestCase):
    """Linux ping sockets, as a user without CAP_NET_RAW whose group the range admits."""

    skip = netns_skip_reason()

    def test_auto_chooses_ping_socket(self) -> None:
        """Without CAP_NET_RAW, auto mode opens ping sockets; the identifier is their port."""
        program = (
            "import socket; from netproto.ping import IcmpSocket; "
            "from twisted.internet import reactor; "
            "s4 = IcmpSocket(reactor, socket.AF_INET); s6 = IcmpSocket(reactor, socket.AF_INET6); "
            "print(s4.mode, s6.mode, s4.table.ident == s4.socket.getsockname()[1])"
        )
        result = in_netns(f"{OPEN_RANGE} && {NO_RAW} {sys.executable} -c '{program}'")
        self.assertEqual(result.stdout.split(), ["dgram", "dgram", "True"], result.stderr)

    def test_ping_both_families(self) -> None:
        """``netproto ping`` works unprivileged on 127.0.0.1 and ::1, TTL included."""
        v4 = netproto("ping", "--json", "-c", "2", "-i", "0.05", "127.0.0.1")
        v6 = netproto("ping", "--json", "-c", "2", "-i", "0.05", "::1")
        result = in_netns(f"{OPEN_RANGE} && {NO_RAW} {v4} && {NO_RAW} {v6}")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        records = [json.loads(line) for line in result.stdout.splitlines()]
        replies = [r for r in records if not r.get("summary")]
        self.assertEqual(
            [(r["from"], r["seq"], r["ttl"]) for r in replies],
            [("127.0.0.1", 1, 64), ("127.0.0.1", 2, 64), ("::1", 1, 64), ("::1", 2, 64)],
        )
        self.assertEqual([r["received"] for r in records if r.get("summary")], [2, 2])

    def test_ping_socket_closed_cleanly(self) -> None:
        """
        -c 2, 3 and 4 on ping sockets, IPv4 and IPv6, as root with --socket
        dgram too: the statistics and nothing on stderr (the socket the last
        reply closed was read again, a traceback).
        """
        commands = []
        for count in ("2", "3", "4"):
            for host in ("127.0.0.1", "::1"):
                args = ("ping", "-q", "-c", count, "-i", "0.02", host)
                commands.append(f"{NO_RAW} {netproto(*args)}")
                commands.append(netproto("--debug", *args[:1], "--socket", "dgram", *args[1:]))
        result = in_netns(f"{OPEN_RANGE} && " + " && ".join(commands), timeout=60)
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        self.assertEqual(result.stdout.count(" 0% packet loss"), 12, result.stdout)

    def test_sweep_unprivileged(self) -> None:
        """An unprivileged sweep of 127.0.0.0/26 finds all 62 hosts alive."""
        command = netproto("ping", "-a", "--rate", "0", "127.0.0.0/26")
        result = in_netns(f"{OPEN_RANGE} && {NO_RAW} {command}")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(result.stdout.splitlines()), 62, result.stdout)
        self.assertIn("62 targets: 62 alive, 0 unreachable", result.stderr)

    def test_forcing_raw_refused(self) -> None:
        """--socket raw without CAP_NET_RAW: exit 2 (iputils) and one line, no fallback."""
        command = netproto("ping", "--socket", "raw", "-c", "1", "127.0.0.1")
        result = in_netns(f"{OPEN_RANGE} && {NO_RAW} {command}")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn("CAP_NET_RAW", result.stderr)

    def test_neither_possible(self) -> None:
        """No CAP_NET_RAW and a closed range: exit 2 (iputils) with a one-line explanation."""
        result = in_netns(f"{NO_RAW} {netproto('ping', '-c', '1', '127.0.0.1')}")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, "")
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("netproto ping: cannot open an ICMP socket"), lines)
        self.assertIn('net.ipv4.ping_group_range is "1 0", which admits no group', lines[0])
        self.assertIn('as root: sysctl -w net.ipv4.ping_group_range="0 2147483647"', lines[0])
        self.assertNotIn("Traceback", result.stderr)

    def test_dgram_refused_as_root(self) -> None:
        """--socket dgram as root with the range closed: a message about ping sockets only."""
        result = in_netns(netproto("ping", "--socket", "dgram", "-c", "1", "127.0.0.1"))
        self.assertEqual(result.returncode, 2)
        self.assertEqual(
            result.stderr,
            "netproto ping: cannot open an unprivileged ICMP ping socket: "
            'net.ipv4.ping_group_range is "1 0", which admits no group; to allow them for every'
            ' group, run as root: sysctl -w net.ipv4.ping_group_range="0 2147483647" (a file in'
            " /etc/sysctl.d/ keeps it)\n",
        )
