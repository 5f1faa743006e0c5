"""
The sweep mode of ``netproto ping`` (several hosts or ranges): one line (or
JSON object) per target as it is decided, a progress line on a terminal, a
summary; shards, resuming, and the state file ``--resume`` keeps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import sys
import time
from typing import Any

from netproto.cli._command import finish, usage_error
from netproto.cli._output import CommandError, emit_json, error_record, format_ms, ms, printable

__all__ = [
    "CHILD_ENV",
    "STATE_FORMAT",
    "SWEEP_ALIVE",
    "SWEEP_NOT_FOUND",
    "SWEEP_SYSTEM",
    "SWEEP_UNREACHABLE",
    "SWEEP_USAGE",
    "Tally",
    "fingerprint",
    "report_failed_names",
    "rtt_totals",
    "run_sweep",
    "show_host",
    "shows_no_host",
    "summary_line",
]

SWEEP_ALIVE = 0
SWEEP_UNREACHABLE = 1
SWEEP_NOT_FOUND = 2
SWEEP_USAGE = 3
SWEEP_SYSTEM = 4
"""fping's exit statuses: all alive, some unreachable, a name not found, usage, a system call."""

PROGRESS_FROM = 256
"""Sweeps of at least this many targets show a progress line on a terminal."""
_PROGRESS_EVERY = 0.25
_SAVE_EVERY = 1.0
CHILD_ENV = "NETPROTO_SWEEP_SHARD"
"""Set in the environment of ``--processes`` children: they show no progress line,
say ``{"ready": true}`` once set up and start when their standard input closes,
and with the value ``quiet`` send no per-target objects (the parent prints none),
their summaries carrying their round-trip totals instead."""
STATE_FORMAT = "netproto-sweep/1"
"""The ``format`` of a ``--resume`` state file."""


def host_record(result: Any) -> dict[str, Any]:
    """The JSON object of one target's verdict."""
    return {
        "host": result.host,
        "alive": result.alive,
        "rtt_ms": ms(result.rtt),
        "transmitted": result.transmitted,
        "received": result.received,
        "duplicates": result.duplicates,
        "error": result.error,
    }


def host_line(record: dict[str, Any], args: argparse.Namespace, label: str) -> str | None:
    """
    The text line of one target's verdict, shown as *label* (the name or
    literal given for it): netproto's (the round trip, replies, the error),
    fping's (``netproto fping``), or a bare address for -a/-u; None when
    -a/-u leave it out.
    """
    alive = record["alive"]
    name = printable(label)
    if args.alive_only or args.unreachable_only:
        wanted = args.alive_only if alive else args.unreachable_only
        return name if wanted else None
    if args.style == "fping":
        if (args.count or 1) > 1:
            return None  # fping -c: the statistics lines say it
        if alive and args.elapsed:
            return f"{name} is alive ({format_ms(record['rtt_ms'] / 1000.0)} ms)"
        return f"{name} is {'alive' if alive else 'unreachable'}"
    if alive:
        extra = ""
        if record["transmitted"] > 1:
            extra = f", {record['received']}/{record['transmitted']} replies"
        rtt = record["rtt_ms"]
        return f"{name} is alive ({format_ms(rtt / 1000.0)} ms{extra})"
    reason = f" ({record['error']})" if record["error"] else ""
    return f"{name} is unreachable{reason}"


def _fping_counts(record: dict[str, Any], label: str, rtts: list[float]) -> str:
    """fping -c's line for a target: xmt/rcv/%loss, and min/avg/max when it answered."""
    sent, got = record["transmitted"], record["received"]
    loss = round(100 * (sent - got) / sent) if sent else 0
    line = f"{printable(label)} : xmt/rcv/%loss = {sent}/{got}/{loss}%"
    if rtts:
        line += f", min/avg/max = {min(rtts):.3f}/{sum(rtts) / len(rtts):.3f}/{max(rtts):.3f}"
    return line


class Tally:
    """The round trips seen, for fping's -s statistics (min, sum, max over every reply)."""

    def __init__(self) -> None:
        self.low = float("inf")
        self.high = 0.0
        self.total = 0.0
        self.count = 0

    def add(self, rtts_ms: list[float]) -> None:
        for rtt in rtts_ms:
            self.low = min(self.low, rtt)
            self.high = max(self.high, rtt)
            self.total += rtt
            self.count += 1

    def add_totals(self, totals: dict[str, Any]) -> None:
        """Add round trips known only by their ``count``, ``min``, ``max`` and ``total`` (ms)."""
        if totals["count"]:
            self.low = min(self.low, totals["min"])
            self.high = max(self.high, totals["max"])
            self.total += totals["total"]
            self.count += totals["count"]


def rtt_totals(summary: Any) -> dict[str, Any]:
    """A sweep summary's round trips, in milliseconds, as :meth:`Tally.add_totals` takes them."""
    return {
        "count": summary.received,
        "min": 1000.0 * summary.rtt_min,
        "max": 1000.0 * summary.rtt_max,
        "total": 1000.0 * summary.rtt_total,
    }


def shows_no_host(args: argparse.Namespace) -> bool:
    """
    Whether the command prints nothing per target (-q, no -a/-u, no JSON,
    no fping -c lines); fping's -s statistics then come from the summaries.
    """
    return (
        args.quiet
        and not args.json
        and not (args.alive_only or args.unreachable_only)
        and (args.style == "netproto" or (args.count or 1) <= 1)
    )


def show_host(record: dict[str, Any], args: argparse.Namespace, tally: Tally) -> None:
    """Print one verdict, once for each operand that named its address (JSON: one object)."""
    rtts = [1000.0 * t for t in record.pop("rtts", ())]
    tally.add(rtts)
    labels = args.labels.get(record["host"], [record["host"]])
    if os.environ.get(CHILD_ENV):
        # A --processes shard: its parent prints (and wants the round trips for -s).
        emit_json({**record, "rtts_ms": rtts})
        return
    if args.json:
        for label in labels:
            emit_json({**record, **({"name": label} if label != record["host"] else {})})
        return
    out = sys.stdout
    for label in labels:
        if not args.quiet or args.alive_only or args.unreachable_only:
            line = host_line(record, args, label)
            if line is not None:
                out.write(line + "\n")
        if args.style == "fping" and (args.count or 1) > 1:
            sys.stderr.write(_fping_counts(record, label, rtts) + "\n")
    out.flush()


def report_failed_names(args: argparse.Namespace) -> None:
    """Say each name that could not be resolved (stderr; JSON: an error object each)."""
    from netproto.cli._lookup import lookup_failure

    for name, error in args.failed:
        failure = lookup_failure(error, SWEEP_NOT_FOUND, host=name)
        if args.json:
            emit_json(error_record(failure.kind, str(failure), host=name))
        else:
            print(f"{printable(name)}: {failure}", file=sys.stderr)


def report_summary(record: dict[str, Any], args: argparse.Namespace, tally: Tally) -> int:
    """Print the summary as the command asks; the sweep's exit status, fping's."""
    record["unknown"] = len(args.failed)
    if args.json:
        emit_json(record)
    elif args.statistics:
        sys.stderr.write(_statistics(record, tally))
    elif args.style == "netproto" and not args.quiet:
        print(summary_line(record), file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    if args.failed:
        return SWEEP_NOT_FOUND
    if record["unreachable"] and not (args.any and record["alive"]):
        return SWEEP_UNREACHABLE
    if not record["alive"]:
        return SWEEP_UNREACHABLE
    return SWEEP_ALIVE


def _statistics(r: dict[str, Any], tally: Tally) -> str:
    """fping -s's block."""
    low = tally.low if tally.count else 0.0
    average = tally.total / tally.count if tally.count else 0.0
    lines = [
        "",
        f"{r['targets'] + r['unknown']:8d} targets",
        f"{r['alive']:8d} alive",
        f"{r['unreachable']:8d} unreachable",
        f"{r['unknown']:8d} unknown addresses",
        "",
        f"{max(0, r['transmitted'] - r['received'] - r['errors']):8d} timeouts "
        "(waiting for response)",
        f"{r['transmitted']:8d} ICMP Echos sent",
        f"{r['received']:8d} ICMP Echo Replies received",
        f"{r['errors']:8d} other ICMP received",
        "",
        f" {low:.3f} ms (min round trip time)",
        f" {average:.3f} ms (avg round trip time)",
        f" {tally.high:.3f} ms (max round trip time)",
        f"{r['time_ms'] / 1000.0:13.3f} sec (elapsed real time)",
        "",
        "",
    ]
    return "\n".join(lines)


def summary_record(summary: Any) -> dict[str, Any]:
    """The JSON object of a sweep's summary."""
    return {
        "summary": True,
        "targets": summary.targets,
        "alive": summary.alive,
        "unreachable": summary.unreachable,
        "transmitted": summary.transmitted,
        "received": summary.received,
        "duplicates": summary.duplicates,
        "damaged": summary.damaged,
        "errors": summary.errors,
        "late": summary.late,
        "time_ms": round(summary.elapsed * 1000.0),
        "complete": summary.complete,
    }


def summary_line(record: dict[str, Any]) -> str:
    """The summary line of a sweep."""
    seconds = record["time_ms"] / 1000.0
    rate = f" ({record['targets'] / seconds:,.0f} targets/s)" if seconds > 0 else ""
    stopped = ", interrupted" if not record["complete"] else ""
    extras = ""
    for key, name in (
        ("unknown", "names not found"),
        ("duplicates", "duplicates"),
        ("damaged", "corrupted"),
        ("errors", "errors"),
    ):
        if record.get(key):
            extras += f", {record[key]} {name}"
    return (
        f"{record['targets']} targets: {record['alive']} alive, "
        f"{record['unreachable']} unreachable; {record['transmitted']} probes sent, "
        f"{record['received']} replies{extras}; time {record['time_ms']}ms{rate}{stopped}"
    )


class Progress:
    """A self-rewriting line on standard error while a long sweep runs."""

    def __init__(self, reactor: Any, sweep: Any) -> None:
        from twisted.internet.task import LoopingCall

        self.sweep = sweep
        self.loop = LoopingCall(self.show)
        self.loop.clock = reactor
        self.loop.start(_PROGRESS_EVERY, now=False)

    def show(self) -> None:
        """Rewrite the line."""
        s = self.sweep
        sys.stderr.write(f"\r{s.decided}/{s.expected} targets decided, {s.alive} alive\x1b[K")
        sys.stderr.flush()

    def stop(self) -> None:
        """Stop and erase the line."""
        if self.loop.running:
            self.loop.stop()
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


def fingerprint(space: Any, args: argparse.Namespace) -> str:
    """What a state file must agree on: the targets, the count and the retries."""
    text = repr((space.spans, args.count or 1, args.retries))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def load_state(path: str, space: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    """The state of an interrupted sweep kept in *path*, None if there is none yet."""
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise usage_error(f"--resume {printable(path)}: unreadable state ({e})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise usage_error(f"--resume {printable(path)}: not a netproto sweep state file")
    if state.get("targets") != fingerprint(space, args):
        raise usage_error(
            f"--resume {printable(path)}: saved for other targets, -c or -r; "
            "give the same ones, or remove the file"
        )
    if args.seed is not None and args.seed != state.get("order"):
        raise usage_error(f"--resume {printable(path)}: saved with --seed {state.get('order')}")
    if list(args.shard) != state.get("shard"):
        shard = state.get("shard") or [0, 1]
        raise usage_error(
            f"--resume {printable(path)}: saved for --shard {shard[0] + 1}/{shard[1]}"
        )
    return state


def save_state(path: str, sweep: Any, space: Any, args: argparse.Namespace, step: int) -> None:
    """Write the state (atomically: a new file renamed over the old)."""
    state = {
        "format": STATE_FORMAT,
        "targets": fingerprint(space, args),
        "order": sweep.seed,
        "shard": list(sweep.shard),
        "next": step,
        "complete": step >= sweep.positions,
    }
    temporary = f"{path}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(state, f)
            f.write("\n")
        os.replace(temporary, path)
    except OSError as e:
        raise CommandError(f"--resume {printable(path)}: cannot save ({e.strerror or e})", 4) from e


def await_start(limit: float = 10.0) -> None:
    """
    A ``--processes`` shard, set up: say so, and wait (up to *limit*
    seconds) for the parent to close standard input, its start signal.
    """
    emit_json({"ready": True})
    sys.stdout.flush()
    try:
        while select.select([sys.stdin], [], [], limit)[0]:
            if not os.read(sys.stdin.fileno(), 512):
                return
    except (OSError, ValueError):
        return  # no standard input to wait on


async def run_sweep(reactor: Any, client: Any, space: Any, args: argparse.Namespace) -> int:
    """Sweep the targets of *space* as the command line asks; return the exit status."""
    from twisted.internet.task import LoopingCall

    child = os.environ.get(CHILD_ENV)
    seed = args.seed
    start = 0
    if args.resume is not None:
        state = load_state(args.resume, space, args)
        if state is not None:
            seed, start = int(state["order"]), int(state["next"])
    if seed is None:
        seed = int.from_bytes(os.urandom(8), "big")

    tally = Tally()
    report_failed_names(args)

    def on_host(result: Any) -> None:
        show_host({**host_record(result), "rtts": result.rtts}, args, tally)

    # A sweep that shows no target costs no per-target call: -s takes its
    # round trips from the summary.
    silent = child == "quiet" or (not child and shows_no_host(args))

    if child:
        await_start()
    try:
        running = client.sweep(
            space,
            count=args.count or 1,
            interval=args.interval,
            timeout=args.timeout if args.timeout is not None else 1.0,
            rate=args.rate if args.rate is not None else 100.0,
            size=args.size,
            retries=args.retries,
            backoff=args.backoff,
            seed=seed,
            shard=args.shard,
            start=start,
            on_host=None if silent else on_host,
        )
    except ValueError as e:
        raise usage_error(str(e)) from None
    progress = None
    shown = sys.stderr.isatty() and not child
    if running.expected >= PROGRESS_FROM and shown and not running.done.called:
        progress = Progress(reactor, running)
    saver = None
    if args.resume is not None and not running.done.called:
        path = args.resume
        saver = LoopingCall(lambda: save_state(path, running, space, args, running.resume_step))
        saver.clock = reactor
        saver.start(_SAVE_EVERY, now=False)
    deadline = None
    if args.deadline is not None:
        deadline = reactor.callLater(args.deadline, running.stop)
    try:
        summary = await finish(running)
    finally:
        if deadline is not None and deadline.active():
            deadline.cancel()
        if progress is not None:
            progress.stop()
        if saver is not None and saver.running:
            saver.stop()
    if args.resume is not None:
        save_state(args.resume, running, space, args, summary.resume)
    record = summary_record(summary)
    if child:
        # When this shard ran, on the clock every process of the machine shares:
        # the parent's time runs from the first shard's start to the last one's end.
        ended = time.monotonic()
        record["span"] = [ended - summary.elapsed, ended]
    if silent:
        tally.add_totals(rtt_totals(summary))
        if child:
            # A quiet shard's parent has no round trips but these, for -s.
            record["rtt_totals"] = rtt_totals(summary)
    return report_summary(record, args, tally)
