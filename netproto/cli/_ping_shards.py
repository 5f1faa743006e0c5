"""
``netproto ping --processes N``: the sweep's N shards run as child processes
of this one (``--shard K/N`` all with one ``--seed``, ``--json`` on a pipe), their
streams merged into one output as their lines come, their summaries added up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from netproto.cli._output import CommandError
from netproto.cli._ping_sweep import (
    CHILD_ENV,
    PROGRESS_FROM,
    Progress,
    Tally,
    report_failed_names,
    report_summary,
    show_host,
    shows_no_host,
)

__all__ = ["run_shards"]


_ADDED = ("transmitted", "received", "duplicates", "damaged", "errors", "late")


def _child_args(space: Any, args: argparse.Namespace, seed: int, k: int, n: int) -> list[str]:
    """The command line of shard *k* (0-based) of *n*: the same sweep, one part of it."""
    from netproto.ping import key_text

    words = ["ping", "--json", "--seed", str(seed), "--shard", f"{k + 1}/{n}"]
    words += ["-i", repr(args.interval), "-s", str(args.size), "--socket", args.socket]
    words += ["-r", str(args.retries), "-B", repr(args.backoff)]
    for flag, value in (
        ("-c", args.count),
        ("-W", args.timeout),
        ("-w", args.deadline),
        ("-t", args.ttl),
        ("-I", args.source),
    ):
        if value is not None:
            words += [flag, str(value)]
    if args.version is not None:
        words.append(f"-{args.version}")
    rate = args.rate if args.rate is not None else 100.0
    words += ["--rate", repr(rate / n)]
    if args.resume is not None:
        words += ["--resume", f"{args.resume}.{k + 1}"]
    words.append("--")
    words += [f"{key_text(first)}-{key_text(last)}" for first, last in space.spans]
    return words


class _Merged:
    """The shards' streams, as one sweep: what the progress line and the summary read."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.decided = 0
        self.alive = 0
        self.summaries: list[dict[str, Any]] = []
        self.ready = 0
        """Shards that said they are set up and wait for their start."""


async def run_shards(reactor: Any, space: Any, args: argparse.Namespace) -> int:
    """Run the sweep of *space* as ``--processes`` shards; return the exit status."""
    from twisted.internet.defer import CancelledError, Deferred, gatherResults
    from twisted.internet.protocol import ProcessProtocol
    from twisted.internet.task import LoopingCall

    n = args.processes
    seed = args.seed
    if seed is None and args.resume is not None:
        # Resuming: the shards' order is the one their first state file saved.
        try:
            with open(f"{args.resume}.1", encoding="utf-8") as f:
                seed = int(json.load(f)["order"])
        except (OSError, ValueError, KeyError, TypeError):
            seed = None
    if seed is None:
        seed = int.from_bytes(os.urandom(8), "big")
    merged = _Merged(len(space))
    tally = Tally()
    report_failed_names(args)

    def take(line: bytes) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            return
        if not isinstance(record, dict):
            return
        if record.get("summary"):
            merged.summaries.append(record)
            return
        if record.get("ready"):
            merged.ready += 1
            release()
            return
        if "host" not in record:
            return
        merged.decided += 1
        merged.alive += bool(record["alive"])
        rtts = [t / 1000.0 for t in record.pop("rtts_ms", ())]
        show_host({**record, "rtts": rtts}, args, tally)

    def release() -> None:
        # Every shard set up (or gone): start them together, so that their
        # sweeps run side by side rather than one after the other.
        if merged.ready + sum(c.ended.called for c, _ in children) >= n:
            for child, transport in children:
                if not child.released and not child.ended.called:
                    child.released = True
                    transport.closeStdin()

    class Child(ProcessProtocol):
        def __init__(self) -> None:
            self.buffer = b""
            self.ended: Deferred[int] = Deferred()
            self.reaper: LoopingCall | None = None
            self.released = False

        def outReceived(self, data: bytes) -> None:
            self.buffer += data
            *lines, self.buffer = self.buffer.split(b"\n")
            for line in lines:
                take(line)

        def outConnectionLost(self) -> None:
            # The command's reactor runs without a SIGCHLD handler: once the
            # child's output ends, reap it ourselves until it has exited.
            transport: Any = self.transport
            self.reaper = LoopingCall(transport.reapProcess)
            self.reaper.clock = reactor
            self.reaper.start(0.02, now=True)

        def processEnded(self, reason: Any) -> None:
            if self.reaper is not None and self.reaper.running:
                self.reaper.stop()
            if self.buffer:
                take(self.buffer)
            self.ended.callback(getattr(reason.value, "exitCode", None) or 0)
            release()

    children = []
    # Quiet children send no per-target objects, when nothing of them is shown.
    quiet = shows_no_host(args)
    env = dict(os.environ, **{CHILD_ENV: "quiet" if quiet else "1"})
    for k in range(n):
        child = Child()
        words = [sys.executable, "-m", "netproto", *_child_args(space, args, seed, k, n)]
        transport = reactor.spawnProcess(
            child, sys.executable, words, env=env, childFDs={0: "w", 1: "r", 2: 2}
        )
        children.append((child, transport))
    progress = None
    if len(space) >= PROGRESS_FROM and sys.stderr.isatty():
        progress = Progress(reactor, merged)
    everyone = gatherResults([c.ended for c, _ in children])
    # Wait through a Deferred of our own: cancelling it (Ctrl-C) must not
    # cancel the children's, whose summaries are still to come.
    waiter: Deferred[list[int]] = Deferred()

    def relay(result: Any) -> Any:
        if not waiter.called:
            waiter.callback(result)
        return result  # for the second await below, after a Ctrl-C

    everyone.addBoth(relay)
    interrupted = False
    try:
        try:
            statuses = await waiter
        except CancelledError:
            interrupted = True
            for child, transport in children:
                if not child.ended.called:
                    if not child.released:
                        child.released = True
                        transport.closeStdin()
                    try:
                        transport.signalProcess("INT")
                    except Exception:
                        pass
            statuses = await everyone
    finally:
        if progress is not None:
            progress.stop()
    # Ctrl-C may reach a shard still starting: it exits 130 with no summary,
    # having probed nothing; the sweep is then reported as interrupted.
    failures = [s for s in statuses if s not in (0, 1) and not (interrupted and s == 130)]
    if len(merged.summaries) < n and (failures or not interrupted):
        raise CommandError(
            f"{n - len(merged.summaries)} of {n} shards failed", max(failures, default=4)
        )
    total: dict[str, Any] = {"summary": True}
    for key in ("targets", "alive", "unreachable", *_ADDED):
        total[key] = sum(s[key] for s in merged.summaries)
    total["time_ms"] = max((s["time_ms"] for s in merged.summaries), default=0)
    spans = [s.pop("span", None) for s in merged.summaries]
    if spans and all(isinstance(span, list) and len(span) == 2 for span in spans):
        # From the first shard's first probe to the last shard's last verdict.
        first = min(span[0] for span in spans)
        last = max(span[1] for span in spans)
        total["time_ms"] = max(total["time_ms"], round((last - first) * 1000.0))
    for summary in merged.summaries:
        totals = summary.pop("rtt_totals", None)
        if isinstance(totals, dict):
            tally.add_totals(totals)
    total["complete"] = len(merged.summaries) == n and all(s["complete"] for s in merged.summaries)
    if not total["complete"]:
        # As an interrupted sweep of one process counts them: every target expected.
        total["targets"] = max(total["targets"], merged.expected)
    return report_summary(total, args, tally)
