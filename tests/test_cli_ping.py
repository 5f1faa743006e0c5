"""
``netproto ping`` run as a user runs it, compared with iputils ping and fping
where they exist. Only loopback and the tests' own namespaces are pinged.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests._helpers import on_terminal, ping_skip_reason, run_cli, tool_skip_reason
from tests.test_ping_netns import in_netns, netns_skip_reason, netproto


def normalise(text: str) -> list[str]:
    """ping(8) output with the times taken out, so that two runs compare equal."""
    text = re.sub(r"time=[0-9.]+ ms", "time=T ms", text)
    text = re.sub(r"time [0-9]+ms", "time Tms", text)
    text = re.sub(r"= [0-9./]+ ms", "= R ms", text)
    return text.splitlines()


def iputils(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ping", *args], capture_output=True, text=True, timeout=30, check=False)


class SingleHostTests(SynchronousTestCase):
    """One host: ping(8)'s output (as root on raw sockets, or as a user on ping sockets)."""

    skip = ping_skip_reason() or tool_skip_reason("ping")

    def assert_like_iputils(self, *args: str) -> None:
        ours, theirs = run_cli("ping", *args), iputils(*args)
        self.assertEqual(ours.returncode, theirs.returncode, ours.stderr)
        self.assertEqual(normalise(ours.stdout), normalise(theirs.stdout))

    def test_ipv4_like_iputils(self) -> None:
        """-c 2 -i 0.1 127.0.0.1 prints what iputils prints, times aside."""
        self.assert_like_iputils("-c", "2", "-i", "0.1", "127.0.0.1")

    def test_ipv6_like_iputils(self) -> None:
        """-c 2 -i 0.1 ::1 prints what iputils prints, times aside."""
        self.assert_like_iputils("-c", "2", "-i", "0.1", "::1")

    def test_options_like_iputils(self) -> None:
        """-s 100 -t 5 -I 127.0.0.1 and -q print what iputils prints."""
        self.assert_like_iputils("-c", "1", "-s", "100", "-t", "5", "-I", "127.0.0.1", "127.0.0.1")
        self.assert_like_iputils("-q", "-c", "2", "-i", "0.05", "127.0.0.1")

    def test_time_precision(self) -> None:
        """
        Reply times have ping(8)'s precision for their size: three decimals
        under a millisecond (the usual on loopback), two under 10 ms, and so on.
        """
        from netproto.cli._output import format_ms

        result = run_cli("ping", "-c", "1", "127.0.0.1")
        match = re.search(r"icmp_seq=1 ttl=64 time=([0-9.]+) ms\n", result.stdout)
        assert match is not None, result.stdout
        shown = match.group(1)
        self.assertEqual(format_ms(float(shown) / 1000), shown)
        self.assertRegex(result.stdout, r"rtt min/avg/max/mdev = (\d+\.\d{3}/){3}\d+\.\d{3} ms")

    def test_json(self) -> None:
        """--json: one object per reply, then the summary, with stable keys."""
        result = run_cli("ping", "--json", "-c", "2", "-i", "0.05", "127.0.0.1")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        records = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(len(records), 3)
        for seq, record in enumerate(records[:2], 1):
            self.assertLessEqual(
                {"host", "from", "seq", "ttl", "bytes", "time_ms", "dup", "error"}, set(record)
            )
            self.assertEqual(
                (
                    record["host"],
                    record["from"],
                    record["seq"],
                    record["ttl"],
                    record["bytes"],
                    record["dup"],
                    record["error"],
                ),
                ("127.0.0.1", "127.0.0.1", seq, 64, 64, False, None),
            )
            self.assertGreater(record["time_ms"], 0)
        summary = records[2]
        self.assertEqual(
            (
                summary["summary"],
                summary["host"],
                summary["transmitted"],
                summary["received"],
                summary["loss"],
            ),
            (True, "127.0.0.1", 2, 2, 0),
        )
        for key in ("min_ms", "avg_ms", "max_ms", "mdev_ms"):
            self.assertIsInstance(summary[key], float)

    def test_interrupt_prints_statistics(self) -> None:
        """Ctrl-C (SIGINT) during an endless ping: the statistics block, exit 0."""
        process = subprocess.Popen(
            [sys.executable, "-m", "netproto", "ping", "-i", "0.05", "127.0.0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, errors)
        self.assertTrue(lines[0].startswith("PING 127.0.0.1 (127.0.0.1)"))
        self.assertIn("--- 127.0.0.1 ping statistics ---", rest)
        match = re.search(r"(\d+) packets transmitted, (\d+) received", rest)
        assert match is not None
        self.assertGreaterEqual(int(match.group(2)), 2)
        self.assertIn("rtt min/avg/max/mdev", rest)
        self.assertEqual(errors, "")

    def test_reader_goes_away(self) -> None:
        """``netproto ping ... | head -2``: a prompt, quiet exit when the pipe closes."""
        for args in (["-c", "20", "-i", "0.05", "127.0.0.1"], ["--rate", "50", "127.0.0.0/28"]):
            with self.subTest(args=args):
                process = subprocess.Popen(
                    [sys.executable, "-m", "netproto", "ping", *args],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                assert process.stdout is not None and process.stderr is not None
                process.stdout.readline()
                process.stdout.readline()
                process.stdout.close()
                errors = process.stderr.read()
                process.wait(timeout=30)
                self.assertEqual(process.returncode, 1)
                self.assertEqual(errors, b"")

    def test_deadline(self) -> None:
        """-w 0.3 -i 0.1 without -c: stops by itself after the deadline with the statistics."""
        result = run_cli("ping", "-q", "-w", "0.3", "-i", "0.1", "127.0.0.1")
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout, r"[34] packets transmitted, [34] received")


class UsageTests(SynchronousTestCase):
    """Mistakes on the command line: no privilege needed, nothing is sent."""

    def test_usage_errors(self) -> None:
        """Bad option values: exit 2, one line naming the option, no traceback."""
        for args in (
            ["-c", "0"],
            ["-s", "70000"],
            ["-t", "0"],
            ["-W", "0"],
            ["-w", "-1"],
            ["--rate", "-1"],
            ["-i", "-1"],
            ["-6"],
            ["-I", "nosuchif0"],
            ["-c", "x"],
            ["-4", "-6"],
        ):
            with self.subTest(args=args):
                target = "::1" if args == ["-4", "-6"] else "127.0.0.1"
                result = run_cli("ping", *args, target)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertNotIn("Traceback", result.stderr)
                self.assertEqual(result.stdout, "")

    def test_help_gives_the_remedy(self) -> None:
        """--help says how to allow unprivileged ping: the exact sysctl, and where to keep it."""
        result = run_cli("ping", "--help")
        self.assertEqual(result.returncode, 0)
        self.assertIn('sysctl -w net.ipv4.ping_group_range="0 2147483647"', result.stdout)
        self.assertIn('"net.ipv4.ping_group_range = 0 2147483647" in a file of', result.stdout)
        self.assertIn("/etc/sysctl.d/", result.stdout)

    def test_invalid_address(self) -> None:
        """An invalid address literal: exit 2 (iputils: any error but no reply), one line."""
        result = run_cli("ping", "-c", "1", "127.001.0.1")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(
            result.stderr.strip(),
            "netproto ping: 127.001.0.1: not a valid IPv4 "
            "address: leading zeros are not permitted in '001'; not looked up as a host name",
        )


class NoReplyTests(SynchronousTestCase):
    """A host that does not answer (a namespace where the kernel ignores echo requests)."""

    skip = netns_skip_reason() or tool_skip_reason("ping")

    def test_no_reply_like_iputils(self) -> None:
        """-c 2 -W 0.2 to a silent host: 100% loss and exit 1, as iputils."""
        ignore = "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all"
        command = netproto("ping", "-c", "2", "-i", "0.1", "-W", "0.2", "127.0.0.1")
        ours = in_netns(f"{ignore} && {command}")
        theirs = in_netns(f"{ignore} && ping -c 2 -i 0.1 -W 0.2 127.0.0.1")
        self.assertEqual((ours.returncode, theirs.returncode), (1, 1))
        self.assertEqual(normalise(ours.stdout), normalise(theirs.stdout))
        self.assertIn("2 packets transmitted, 0 received, 100% packet loss", ours.stdout)


class SweepCommandTests(SynchronousTestCase):
    """Several hosts or a CIDR range: fping-like."""

    skip = ping_skip_reason()

    def test_alive_like_fping(self) -> None:
        """127.0.0.0/28: the same alive hosts as ``fping -a -g``, then a summary."""
        reason = tool_skip_reason("fping")
        if reason:
            raise self.skipTest(reason)
        ours = run_cli("ping", "--rate", "0", "127.0.0.0/28")
        theirs = subprocess.run(
            ["fping", "-a", "-g", "127.0.0.0/28"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        self.assertEqual(ours.returncode, 0, ours.stderr)
        alive = sorted(line.split()[0] for line in ours.stdout.splitlines() if "is alive" in line)
        self.assertEqual(alive, sorted(theirs.stdout.split()))
        self.assertEqual(len(alive), 14)
        self.assertIn(
            "14 targets: 14 alive, 0 unreachable; 14 probes sent, 14 replies", ours.stderr
        )

    def test_json(self) -> None:
        """--json sweep: one object per target (host, alive, rtt_ms), then the summary."""
        result = run_cli("ping", "--json", "127.0.0.1", "::1", "127.0.0.0/30")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        records = [json.loads(line) for line in result.stdout.splitlines()]
        hosts = records[:-1]
        self.assertEqual(sorted(r["host"] for r in hosts), ["127.0.0.1", "127.0.0.2", "::1"])
        for record in hosts:
            self.assertEqual(record["alive"], True)
            self.assertGreater(record["rtt_ms"], 0)
        self.assertEqual(
            {k: records[-1][k] for k in ("summary", "targets", "alive", "unreachable")},
            {"summary": True, "targets": 3, "alive": 3, "unreachable": 0},
        )

    def test_rounds(self) -> None:
        """-c 3 -i 0.05 per target: three replies each."""
        result = run_cli("ping", "-c", "3", "-i", "0.05", "127.0.0.1", "127.0.0.2")
        self.assertEqual(result.returncode, 0)
        self.assertEqual(result.stdout.count("3/3 replies"), 2, result.stdout)

    def test_unreachable(self) -> None:
        """A silent target is unreachable; exit 1 when no target answered."""
        reason = netns_skip_reason()
        if reason:
            raise self.skipTest(reason)
        result = in_netns(
            "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all && "
            + netproto("ping", "-W", "0.2", "127.0.0.1", "127.0.0.2")
        )
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("127.0.0.1 is unreachable\n", result.stdout)
        self.assertIn("2 targets: 0 alive, 2 unreachable", result.stderr)

    def test_unreachable_only_with_retries(self) -> None:
        """-u -r 1 on silent targets: two probes each, then their addresses alone, as fping -u."""
        reason = netns_skip_reason()
        if reason:
            raise self.skipTest(reason)
        result = in_netns(
            "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all && "
            + netproto("ping", "-u", "-r", "1", "-W", "0.2", "127.0.0.1-127.0.0.3")
        )
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(
            sorted(result.stdout.splitlines()), ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        )
        self.assertIn("3 targets: 0 alive, 3 unreachable; 6 probes sent, 0 replies", result.stderr)

    def test_interrupted_sweep(self) -> None:
        """Ctrl-C during a slow sweep: targets so far, a summary marked interrupted, exit 0."""
        process = subprocess.Popen(
            [sys.executable, "-m", "netproto", "ping", "--rate", "20", "127.0.0.0/24"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        first = process.stdout.readline()  # a verdict is out: the sweep is under way
        process.send_signal(signal.SIGINT)
        out, errors = process.communicate(timeout=30)
        out = first + out
        self.assertEqual(process.returncode, 0, errors)
        self.assertIn("is alive", out)
        self.assertRegex(errors, r"254 targets: \d+ alive, 0 unreachable; .*interrupted\n")

    def test_progress_on_a_terminal(self) -> None:
        """A long sweep shows a progress line on a terminal's stderr, erased at the end."""
        status, out, shown = on_terminal(
            ["ping", "--rate", "2000", "127.0.0.0/22"], stream="stderr"
        )
        self.assertEqual(status, 0)
        self.assertIn(b"targets decided", shown)
        self.assertIn(b"\r\x1b[K1022 targets: 1022 alive", shown)
        self.assertEqual(out.count(b" is alive ("), 1022)


def _hosts(stdout: str) -> list[str]:
    """The hosts of a --json sweep's output (its per-target objects)."""
    return [r["host"] for r in map(json.loads, stdout.splitlines()) if "host" in r]


class ShardedSweepTests(SynchronousTestCase):
    """Shards, processes, exclusions, resuming, fping's -a and -u."""

    skip = ping_skip_reason()

    def test_two_shards_cover_once(self) -> None:
        """Shards 1/2 and 2/2 of one seed report each target of a /22 once between them."""
        seen: list[str] = []
        for shard in ("1/2", "2/2"):
            result = run_cli(
                "ping", "--json", "--rate", "0", "--seed", "42", "--shard", shard, "127.0.0.0/22"
            )
            self.assertEqual(result.returncode, 0, result.stderr)
            hosts = _hosts(result.stdout)
            self.assertGreater(len(hosts), 400)
            seen += hosts
        self.assertEqual(len(seen), 1022)
        self.assertEqual(len(set(seen)), 1022)

    def test_processes(self) -> None:
        """--processes 2: the same, in one command, one merged stream and one summary."""
        result = run_cli("ping", "--json", "--rate", "0", "--processes", "2", "127.0.0.0/22")
        self.assertEqual(result.returncode, 0, result.stderr)
        hosts = _hosts(result.stdout)
        self.assertEqual(sorted(hosts), sorted(set(hosts)))
        self.assertEqual(len(hosts), 1022)
        summary = json.loads(result.stdout.splitlines()[-1])
        self.assertEqual((summary["targets"], summary["alive"]), (1022, 1022))
        text = run_cli("ping", "-a", "--rate", "0", "--processes", "3", "127.0.0.0/24")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertEqual(len(text.stdout.splitlines()), 254)
        self.assertIn("254 targets: 254 alive, 0 unreachable", text.stderr)

    def test_shard_waits_for_its_start(self) -> None:
        """
        A --processes shard says it is ready, then sends nothing until its
        parent closes its standard input (the start signal); then it sweeps,
        its summary carrying the span it ran and its round-trip totals.
        """
        from netproto.cli._ping_sweep import CHILD_ENV

        command = [sys.executable, "-m", "netproto", "ping", "--json", "--rate", "0"]
        command += ["--seed", "3", "--shard", "1/2", "-q", "127.0.0.0/28"]
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, CHILD_ENV: "quiet"},
        )
        assert child.stdin is not None and child.stdout is not None
        self.addCleanup(child.stdout.close)
        self.addCleanup(child.stderr.close)  # type: ignore[union-attr]
        try:
            self.assertEqual(json.loads(child.stdout.readline()), {"ready": True})
            self.assertIsNone(child.poll())
        finally:
            child.stdin.close()
        records = [json.loads(line) for line in child.stdout.read().splitlines()]
        self.assertEqual(child.wait(timeout=30), 0)
        self.assertEqual(len(records), 1)  # quiet: the summary alone
        summary = records[0]
        self.assertTrue(summary["summary"])
        self.assertGreater(summary["alive"], 0)
        start, end = summary["span"]
        self.assertLessEqual(start, end)
        self.assertEqual(summary["rtt_totals"]["count"], summary["received"])

    def test_processes_interrupted(self) -> None:
        """Ctrl-C to --processes: the children stop, their summaries merge, marked interrupted."""
        process = subprocess.Popen(
            [sys.executable, "-m", "netproto", "ping", "--rate", "20", "--processes", "2",
             "127.0.0.0/24"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert process.stdout is not None
        first = process.stdout.readline()
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, errors)
        self.assertIn("is alive", first)
        self.assertRegex(errors, r"254 targets: \d+ alive, 0 unreachable; .*interrupted\n")

    def test_exclusions(self) -> None:
        """--exclude and --exclude-file take their ranges out before anything is sent."""
        path = "exclude.txt"
        with open(path, "w") as f:
            f.write("# not these\n127.0.0.0/26\n127.0.0.100-127.0.0.109 # nor these\n")
        result = run_cli(
            "ping", "--json", "--rate", "0", "--exclude", "127.0.0.254",
            "--exclude-file", path, "127.0.0.0/24",
        )  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stderr)
        hosts = {int(h.rsplit(".", 1)[1]) for h in _hosts(result.stdout)}
        self.assertEqual(hosts, set(range(64, 254)) - set(range(100, 110)))

    def test_alive_and_unreachable_only(self) -> None:
        """-a prints the alive addresses alone, one a line, as fping -a; -u none of them here."""
        alive = run_cli("ping", "-a", "--rate", "0", "127.0.0.1-127.0.0.4")
        self.assertEqual(alive.returncode, 0, alive.stderr)
        lines = alive.stdout.splitlines()
        self.assertEqual(sorted(lines), ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"])
        self.assertIn("4 targets: 4 alive", alive.stderr)
        unreachable = run_cli("ping", "-u", "--rate", "0", "127.0.0.1-127.0.0.4")
        self.assertEqual((unreachable.returncode, unreachable.stdout), (0, ""))

    def test_resume(self) -> None:
        """
        A sweep stopped by -w keeps its place in the --resume file; run again,
        it probes the rest: every target once or (its window open at the
        stop) twice, and the file then says complete.
        """
        state = "sweep.state"
        first = run_cli(
            "ping", "--json", "--rate", "500", "-W", "0.1", "-w", "0.5", "--seed", "3",
            "--resume", state, "127.0.0.0/22",
        )  # fmt: skip
        self.assertEqual(first.returncode, 0, first.stderr)
        saved = json.loads(open(state).read())
        self.assertEqual(saved["format"], "netproto-sweep/1")
        self.assertFalse(saved["complete"])
        self.assertGreater(saved["next"], 0)
        second = run_cli("ping", "--json", "--rate", "0", "--resume", state, "127.0.0.0/22")
        self.assertEqual(second.returncode, 0, second.stderr)
        before, after = _hosts(first.stdout), _hosts(second.stdout)
        self.assertEqual(len(set(before) | set(after)), 1022)
        self.assertLess(len(set(before) & set(after)), 64)
        self.assertTrue(json.loads(open(state).read())["complete"])
        other = run_cli("ping", "--resume", state, "127.0.0.0/24")
        self.assertEqual(other.returncode, 3)  # fping's status for invalid arguments
        self.assertIn("saved for other targets", other.stderr)

    def test_processes_resume(self) -> None:
        """--processes with --resume: a state file per shard; run again, they finish the sweep."""
        common = ["ping", "-q", "--processes", "2", "--resume", "state", "127.0.0.0/22"]
        first = run_cli(*common[:1], "--rate", "400", "-W", "0.1", "-w", "0.6", *common[1:])
        self.assertEqual(first.returncode, 0, first.stderr)
        second = run_cli(*common[:1], "--rate", "0", *common[1:])
        self.assertEqual((second.returncode, second.stderr), (0, ""))
        for k in (1, 2):
            with open(f"state.{k}") as f:
                saved = json.load(f)
            self.assertEqual((saved["shard"], saved["complete"]), ([k - 1, 2], True))

    def test_sweep_usage_errors(self) -> None:
        """
        Bad shard, retries with -c, payloads too small for the proof: one line;
        exit 3 (fping's), or 2 (ping's) when the parser refuses the value before
        it is known to be a sweep.
        """
        for args in (
            ["--shard", "3/2", "127.0.0.0/30"],
            ["--shard", "1/2", "127.0.0.0/30"],
            ["-s", "10", "127.0.0.0/30"],
            ["-r", "1", "-c", "2", "127.0.0.0/30"],
            ["--exclude", "127.0.0.0/99", "127.0.0.0/30"],
            ["--exclude-file", "no-such-file", "127.0.0.0/30"],
            ["--processes", "0", "127.0.0.0/30"],
            ["127.0.0.9-127.0.0.1"],
        ):
            with self.subTest(args=args):
                result = run_cli("ping", *args)
                parser_refused = args[:2] == ["--shard", "3/2"]
                self.assertEqual(result.returncode, 2 if parser_refused else 3, result.stderr)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertEqual(result.stdout, "")
