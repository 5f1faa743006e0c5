"""
``netproto ping HOST`` against iputils ping for the options scripts use:
names in reply lines (``-n``, ``-H``), ``-D``, ``-O``, ``-p``, the IPv6 size
limit and iputils' exit statuses; on loopback, and in a namespace of the
test's own where no echo is answered.
"""

from __future__ import annotations

import re
import shlex

from twisted.trial.unittest import SynchronousTestCase

from netproto.ping._probes import COOKIE_SIZE, Payloads
from tests._dns_server import system_files_skip_reason
from tests._helpers import ping_skip_reason, run_cli, tool_skip_reason
from tests.test_cli_ping import iputils, normalise
from tests.test_ping_netns import in_netns, netns_skip_reason, netproto


def _stamped(text: str) -> list[str]:
    """Lines with -D's [seconds.micro] stamps and the times taken out."""
    return normalise(re.sub(r"^\[\d+\.\d{6}\] ", "[S] ", text, flags=re.M))


class NamesAndOptionsTests(SynchronousTestCase):
    """On loopback: what iputils prints for the same command line."""

    skip = ping_skip_reason() or tool_skip_reason("ping") or system_files_skip_reason("localhost")

    def assert_like_iputils(self, *args: str) -> str:
        ours, theirs = run_cli("ping", *args), iputils(*args)
        self.assertEqual(ours.returncode, theirs.returncode, ours.stderr)
        self.assertEqual(_stamped(ours.stdout), _stamped(theirs.stdout))
        return ours.stdout

    def test_names(self) -> None:
        """A name given: each reply names its sender (``localhost (127.0.0.1)``); -n: not."""
        out = self.assert_like_iputils("-c", "2", "-i", "0.1", "localhost")
        self.assertIn("64 bytes from localhost (127.0.0.1): icmp_seq=1 ", out)
        out = self.assert_like_iputils("-n", "-c", "1", "localhost")
        self.assertIn("64 bytes from 127.0.0.1: icmp_seq=1 ", out)

    def test_force_names(self) -> None:
        """-H names the sender of an address given too (newer iputils' -H)."""
        result = run_cli("ping", "-H", "-c", "1", "127.0.0.1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("64 bytes from localhost (127.0.0.1): icmp_seq=1 ", result.stdout)
        result = run_cli("ping", "-n", "-H", "-c", "1", "127.0.0.1")
        self.assertEqual(result.returncode, 2)

    def test_timestamps_and_pattern(self) -> None:
        """-D stamps each reply line; -p prints PATTERN first, as iputils does."""
        out = self.assert_like_iputils("-D", "-c", "2", "-i", "0.1", "-p", "ff00ab", "127.0.0.1")
        self.assertRegex(out, r"(?m)^PATTERN: 0xff00ab\n")
        self.assertRegex(out, r"(?m)^\[\d+\.\d{6}\] 64 bytes from 127\.0\.0\.1: ")

    def test_ipv6_size(self) -> None:
        """-s allows 65527 bytes over IPv6 (65507 over IPv4), and the reply comes back."""
        out = self.assert_like_iputils("-c", "1", "-s", "65527", "::1")
        self.assertIn("65535 bytes from ::1: icmp_seq=1 ", out)
        for size, target in (("65528", "::1"), ("65508", "127.0.0.1")):
            result = run_cli("ping", "-c", "1", "-s", size, target)
            self.assertEqual(result.returncode, 2, result.stderr)


class SilentHostTests(SynchronousTestCase):
    """In a namespace whose kernel answers no echo: -O, and the statuses of no reply."""

    skip = netns_skip_reason() or tool_skip_reason("ping")

    def test_outstanding_and_statuses(self) -> None:
        """
        -O says "no answer yet" for each unanswered probe, as iputils; no reply
        is exit 1, -c 3 -w 1 with fewer replies too; an unknown host is 2.
        """
        commands = {
            "outstanding": ["-O", "-c", "2", "-i", "0.2", "-W", "0.3", "127.0.0.1"],
            "deadline": ["-c", "3", "-w", "1", "-i", "0.2", "127.0.0.1"],
            "unknown": ["-c", "1", "nosuch.invalid"],
        }
        parts = ["sysctl -qw net.ipv4.icmp_echo_ignore_all=1"]
        for name, args in commands.items():
            words = " ".join(shlex.quote(a) for a in args)
            for tool, program in (("ours", netproto("ping", words)), ("iputils", f"ping {words}")):
                parts.append(f"echo '=== {name} {tool}'; {program} 2>&1; echo rc=$?")
        result = in_netns(" ; ".join(parts))
        sections = dict(
            (head.split()[0] + " " + head.split()[1], body)
            for head, body in re.findall(r"=== (\S+ \S+)\n(.*?)(?==== |\Z)", result.stdout, re.S)
        )
        for name in commands:
            ours, theirs = sections[f"{name} ours"], sections[f"{name} iputils"]
            with self.subTest(name=name):
                self.assertEqual(ours.splitlines()[-1], theirs.splitlines()[-1])  # rc=
                if name != "unknown":  # (the wording of resolver errors differs)
                    self.assertEqual(normalise(ours), normalise(theirs))
        self.assertIn("no answer yet for icmp_seq=1\n", sections["outstanding ours"])
        self.assertEqual(sections["deadline ours"].splitlines()[-1], "rc=1")
        self.assertEqual(sections["unknown ours"].splitlines()[-1], "rc=2")


class PayloadTests(SynchronousTestCase):
    """The bytes -p puts in each probe."""

    def test_pattern_fills_after_the_cookie(self) -> None:
        """The payload is the random cookie, then the pattern repeated to the size."""
        payload = Payloads(COOKIE_SIZE + 5, b"\xab\xcd").next()
        self.assertEqual(payload[COOKIE_SIZE:], b"\xab\xcd\xab\xcd\xab")
        self.assertEqual(len(Payloads(3, b"\x01").next()), 3)
