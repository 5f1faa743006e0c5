"""
``netproto fping`` and the sweep flags of ``netproto ping`` run side by side
with the real fping: the same lines, the same exit statuses. Only loopback
and the tests' own namespaces are pinged; unreachable targets and unknown
names are tried inside a namespace of their own (no route, no resolver).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from tests._helpers import ping_skip_reason, run_cli, tool_skip_reason
from tests.test_ping_netns import in_netns, netns_skip_reason, netproto

UNREACHABLE = "10.99.0.1"
"""No route to it inside a fresh namespace: every send fails there, nothing leaves."""


def fping(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["fping", *args], capture_output=True, text=True, timeout=30, check=False)


def both_in_netns(*args: str) -> tuple[subprocess.CompletedProcess[str], ...]:
    """``netproto fping ARGS`` and ``fping ARGS``, each in a namespace of its own."""
    quoted = " ".join(args)
    return in_netns(netproto("fping", *args)), in_netns(f"fping {quoted}")


class LikeFpingTests(SynchronousTestCase):
    """The same output and statuses as fping, on loopback."""

    skip = ping_skip_reason() or tool_skip_reason("fping")

    def assert_same(self, *args: str, stdin: str | None = None) -> None:
        ours = run_cli("fping", *args, stdin=stdin.encode() if stdin else None)
        theirs = subprocess.run(
            ["fping", *args], input=stdin, capture_output=True, text=True, timeout=30, check=False
        )
        self.assertEqual(ours.returncode, theirs.returncode, ours.stderr)
        self.assertEqual(sorted(ours.stdout.splitlines()), sorted(theirs.stdout.splitlines()))

    def test_alive_lines(self) -> None:
        """Plain output: 'HOST is alive', names as given."""
        self.assert_same("127.0.0.1", "127.0.0.2", "::1", "localhost")

    def test_alive_list_of_a_range(self) -> None:
        """-a -g CIDR and -a -g START END: bare addresses, network and broadcast left out."""
        self.assert_same("-a", "-g", "127.0.0.0/29")
        self.assert_same("-a", "-g", "127.0.0.3", "127.0.0.9")

    def test_quiet(self) -> None:
        """-q: nothing at all; -q -a: the alive list still."""
        self.assert_same("-q", "127.0.0.1")
        self.assert_same("-q", "-a", "127.0.0.1", "127.0.0.2")

    def test_targets_from_stdin_and_file(self) -> None:
        """No operands: standard input; -f FILE: one target a line, comments and blanks skipped."""
        self.assert_same(stdin="127.0.0.1\n127.0.0.2\n")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("# hosts\n127.0.0.5\n\n127.0.0.6 trailing words\n")
        try:
            self.assert_same("-f", f.name)
            self.assert_same("-a", "-f", f.name)
        finally:
            os.unlink(f.name)

    def test_statistics(self) -> None:
        """-s: fping's statistics block on standard error, the same lines times aside."""
        ours, theirs = run_cli("fping", "-s", "127.0.0.1"), fping("-s", "127.0.0.1")
        self.assertEqual(ours.returncode, theirs.returncode)
        number = re.compile(r"[0-9]+\.[0-9]+")
        self.assertEqual(
            number.sub("N", ours.stderr).splitlines(), number.sub("N", theirs.stderr).splitlines()
        )

    def test_quiet_statistics(self) -> None:
        """
        -q -s: the same block as fping's, its round trips taken from the
        sweep's summary (no per-target call): real minimum, mean and maximum.
        """
        ours = run_cli("fping", "-q", "-s", "-g", "127.0.0.0/29")
        theirs = fping("-q", "-s", "-g", "127.0.0.0/29")
        self.assertEqual((ours.returncode, ours.stdout), (theirs.returncode, theirs.stdout))
        number = re.compile(r"[0-9]+\.[0-9]+")
        self.assertEqual(
            number.sub("N", ours.stderr).splitlines(), number.sub("N", theirs.stderr).splitlines()
        )
        found = {
            name: float(value)
            for value, name in re.findall(r"([0-9.]+) ms \((min|avg|max) round trip", ours.stderr)
        }
        self.assertEqual(sorted(found), ["avg", "max", "min"])
        self.assertGreater(found["min"], 0.0)
        self.assertLessEqual(found["min"], found["avg"])
        self.assertLessEqual(found["avg"], found["max"])

    def test_processes_quiet_statistics(self) -> None:
        """
        --processes 2 -q -s: quiet shards (no per-target lines) whose
        summaries carry their round trips: one block, every target counted
        once, the round trips those of the replies.
        """
        ours = run_cli("fping", "-q", "-s", "--processes", "2", "-g", "127.0.0.0/26")
        self.assertEqual((ours.returncode, ours.stdout), (0, ""), ours.stderr)
        for line in ("62 targets", "62 alive", "62 ICMP Echos sent", "62 ICMP Echo Replies"):
            self.assertRegex(ours.stderr, rf"(?m)^ +{line}")
        found = {
            name: float(value)
            for value, name in re.findall(r"([0-9.]+) ms \((min|avg|max) round trip", ours.stderr)
        }
        self.assertGreater(found["min"], 0.0)
        self.assertLessEqual(found["min"], found["avg"])
        self.assertLessEqual(found["avg"], found["max"])
        self.assertEqual(run_cli("fping", "--processes", "0", "127.0.0.1").returncode, 3)

    def test_count(self) -> None:
        """-c 2: fping's per-target statistics line on standard error."""
        ours = run_cli("fping", "-c", "2", "-p", "20", "127.0.0.1")
        theirs = fping("-q", "-c", "2", "-p", "20", "127.0.0.1")
        self.assertEqual(ours.returncode, theirs.returncode)
        shape = r"^127\.0\.0\.1 : xmt/rcv/%loss = 2/2/0%, min/avg/max = [0-9.]+/[0-9.]+/[0-9.]+$"
        self.assertRegex(ours.stderr.strip(), shape)
        self.assertRegex(theirs.stderr.strip(), shape)

    def test_elapsed(self) -> None:
        """-e: the round trip after 'is alive', in fping's form."""
        ours = run_cli("fping", "-e", "127.0.0.1")
        self.assertRegex(ours.stdout, r"^127\.0\.0\.1 is alive \([0-9.]+ ms\)\n$")
        self.assertRegex(fping("-e", "127.0.0.1").stdout, r"^127\.0\.0\.1 is alive \([0-9.]+ ms\)")

    def test_usage_errors_exit_3(self) -> None:
        """fping's status 3 for invalid arguments, one line."""
        for args in (["-c", "0", "127.0.0.1"], ["-t", "x", "127.0.0.1"], ["-g", "127.0.0.1"]):
            result = run_cli("fping", *args)
            self.assertEqual(result.returncode, 3, args)
            self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
            self.assertNotIn("Traceback", result.stderr)
        # (fping 5.1 itself exits 1 here, though its manual promises 3: netproto keeps the
        # manual's word, which scripts are written against.)


class UnreachableTests(SynchronousTestCase):
    """Unreachable targets and unknown names, in a namespace: statuses 1 and 2, as fping."""

    skip = netns_skip_reason() or ping_skip_reason() or tool_skip_reason("fping")

    def test_some_unreachable(self) -> None:
        """One target answers, one cannot be reached: 1; -u lists it; --any makes it 0."""
        args = ("-t", "100", "-r", "1", "127.0.0.1", UNREACHABLE)
        ours, theirs = both_in_netns(*args)
        self.assertEqual((ours.returncode, theirs.returncode), (1, 1), ours.stderr)
        self.assertEqual(ours.stdout, theirs.stdout)
        ours, theirs = both_in_netns("-u", *args)
        self.assertEqual((ours.returncode, ours.stdout), (theirs.returncode, theirs.stdout))
        self.assertEqual(ours.stdout, f"{UNREACHABLE}\n")
        self.assertEqual(in_netns(netproto("fping", "--any", *args)).returncode, 0)

    def test_unknown_name_does_not_stop_the_sweep(self) -> None:
        """A name that cannot be resolved: said on stderr, the rest swept, exit 2."""
        ours, theirs = both_in_netns("127.0.0.1", "nosuch.invalid")
        self.assertEqual((ours.returncode, theirs.returncode), (2, 2), ours.stderr)
        self.assertEqual(ours.stdout, theirs.stdout)
        self.assertEqual(ours.stdout, "127.0.0.1 is alive\n")
        self.assertTrue(ours.stderr.startswith("nosuch.invalid: "), ours.stderr)

    def test_json_failures(self) -> None:
        """--json: one object per target, the unknown name's with an error member, the summary."""
        result = in_netns(
            netproto(
                "fping", "--json", "-t", "100", "-r", "2", "127.0.0.1", UNREACHABLE, "x.invalid"
            )
        )
        self.assertEqual(result.returncode, 2, result.stderr)
        records = [json.loads(line) for line in result.stdout.splitlines()]
        by_host = {r["host"]: r for r in records if "host" in r}
        self.assertEqual(by_host["x.invalid"]["error"]["kind"], "server-failure")
        self.assertTrue(by_host["127.0.0.1"]["alive"])
        self.assertFalse(by_host[UNREACHABLE]["alive"])
        summary = records[-1]
        self.assertEqual(
            {k: summary[k] for k in ("targets", "alive", "unreachable", "unknown")},
            {"targets": 2, "alive": 1, "unreachable": 1, "unknown": 1},
        )

    def test_retries_with_backoff(self) -> None:
        """-r 2 on a silent host: three probes, one a pass."""
        result = in_netns(
            "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all && "
            + netproto("fping", "--json", "-t", "50", "-r", "2", "-B", "2", "127.0.0.1")
        )
        self.assertEqual(result.returncode, 1, result.stderr)
        record, summary = (json.loads(line) for line in result.stdout.splitlines())
        self.assertEqual((record["alive"], record["transmitted"]), (False, 3))
        self.assertEqual((summary["transmitted"], summary["unreachable"]), (3, 1))

    def test_ping_sweep_statuses(self) -> None:
        """netproto ping's sweeps exit as fping: 1 when one target of two is unreachable."""
        result = in_netns(netproto("ping", "-W", "0.1", "127.0.0.1", UNREACHABLE))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("127.0.0.1 is alive", result.stdout)
        self.assertIn(f"{UNREACHABLE} is unreachable", result.stdout)
        self.assertIn("2 targets: 1 alive, 1 unreachable", result.stderr)
        any_of = in_netns(netproto("ping", "--any", "-W", "0.1", "127.0.0.1", UNREACHABLE))
        self.assertEqual(any_of.returncode, 0, any_of.stderr)
