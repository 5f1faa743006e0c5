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
import sys
from typing import Any

from netproto.cli._command import EXIT_FAILED, EXIT_OK, finish, usage_error
from netproto.cli._output import CommandError, emit_json, format_ms, ms, printable

__all__ = ["CHILD_ENV", "STATE_FORMAT", "fingerprint", "host_line", "run_sweep", "summary_line"]

PROGRESS_FROM = 256
"""Sweeps of at least this many targets show a progress line on a terminal."""
_PROGRESS_EVERY = 0.25
_SAVE_EVERY = 1.0
CHILD_ENV = "NETPROTO_SWEEP_SHARD"
"""Set in the environment of ``--processes`` children: they show no progress line,
and with the value ``quiet`` send no per-target objects (the parent prints none)."""
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


def host_line(record: dict[str, Any], args: argparse.Namespace) -> str | None:
    """The text line of one target's verdict (fping's), None when -a/-u leave it out."""
    alive = record["alive"]
    if args.alive_only or args.unreachable_only:
        wanted = args.alive_only if alive else args.unreachable_only
        return record["host"] if wanted else None
    if alive:
        extra = ""
        if record["transmitted"] > 1:
            extra = f", {record['received']}/{record['transmitted']} replies"
        rtt = record["rtt_ms"]
        return f"{record['host']} is alive ({format_ms(rtt / 1000.0)} ms{extra})"
    reason = f" ({record['error']})" if record["error"] else ""
    return f"{record['host']} is unreachable{reason}"


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
    for key, name in (("duplicates", "duplicates"), ("damaged", "corrupted"), ("errors", "errors")):
        if record[key]:
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


async def run_sweep(reactor: Any, client: Any, space: Any, args: argparse.Namespace) -> int:
    """Sweep the targets of *space* as the command line asks; return the exit status."""
    from twisted.internet.task import LoopingCall

    out = sys.stdout
    child = os.environ.get(CHILD_ENV)
    seed = args.seed
    start = 0
    if args.resume is not None:
        state = load_state(args.resume, space, args)
        if state is not None:
            seed, start = int(state["order"]), int(state["next"])
    if seed is None:
        seed = int.from_bytes(os.urandom(8), "big")

    def on_host(result: Any) -> None:
        record = host_record(result)
        if args.json:
            emit_json(record)
        elif not args.quiet:
            line = host_line(record, args)
            if line is not None:
                out.write(line + "\n")
                out.flush()

    try:
        running = client.sweep(
            space,
            count=args.count or 1,
            interval=args.interval,
            timeout=args.timeout if args.timeout is not None else 1.0,
            rate=args.rate if args.rate is not None else 1000.0,
            size=args.size,
            retries=args.retries,
            seed=seed,
            shard=args.shard,
            start=start,
            on_host=None if (args.quiet and not args.json) or child == "quiet" else on_host,
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
    if args.json:
        emit_json(record)
    else:
        if not args.quiet and not (args.alive_only or args.unreachable_only):
            out.write("\n")
        out.write(summary_line(record) + "\n")
    out.flush()
    return EXIT_OK if summary.received else EXIT_FAILED
