"""
The sweep mode of ``netproto ping`` (several hosts or a CIDR range): one
line (or JSON object) per target, a progress line on a terminal, a summary.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from netproto.cli._command import EXIT_FAILED, EXIT_OK, finish
from netproto.cli._output import emit_json, format_ms, ms

__all__ = ["run_sweep"]

PROGRESS_FROM = 256
"""Sweeps of at least this many targets show a progress line on a terminal."""
_PROGRESS_EVERY = 0.25


def _host_record(result: Any) -> dict[str, Any]:
    rtt = result.rtt
    return {
        "host": result.host,
        "alive": result.alive,
        "rtt_ms": ms(rtt),
        "transmitted": result.transmitted,
        "received": result.received,
        "duplicates": result.duplicates,
        "error": result.error,
    }


def _host_line(result: Any) -> str:
    if result.alive:
        extra = ""
        if result.transmitted > 1:
            extra = f", {result.received}/{result.transmitted} replies"
        return f"{result.host} is alive ({format_ms(result.rtt)} ms{extra})"
    reason = f" ({result.error})" if result.error else ""
    return f"{result.host} is unreachable{reason}"


def _summary_record(summary: Any) -> dict[str, Any]:
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
        "time_ms": round(summary.elapsed * 1000.0),
        "complete": summary.complete,
    }


def _summary_line(summary: Any) -> str:
    seconds = summary.elapsed
    rate = f" ({summary.targets / seconds:,.0f} targets/s)" if seconds > 0 else ""
    stopped = ", interrupted" if not summary.complete else ""
    extras = ""
    if summary.duplicates:
        extras += f", {summary.duplicates} duplicates"
    if summary.damaged:
        extras += f", {summary.damaged} corrupted"
    if summary.errors:
        extras += f", {summary.errors} errors"
    return (
        f"{summary.targets} targets: {summary.alive} alive, {summary.unreachable} unreachable; "
        f"{summary.transmitted} probes sent, {summary.received} replies{extras}; "
        f"time {seconds * 1000.0:.0f}ms{rate}{stopped}"
    )


class _Progress:
    """A self-rewriting line on standard error while a long sweep runs."""

    def __init__(self, reactor: Any, sweep: Any) -> None:
        from twisted.internet.task import LoopingCall

        self.sweep = sweep
        self.loop = LoopingCall(self.show)
        self.loop.clock = reactor
        self.loop.start(_PROGRESS_EVERY, now=False)

    def show(self) -> None:
        s = self.sweep
        sys.stderr.write(
            f"\r{s.decided}/{len(s.targets)} targets decided, {s.summary().alive} alive\x1b[K"
        )
        sys.stderr.flush()

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


async def run_sweep(reactor: Any, client: Any, targets: list[str], args: argparse.Namespace) -> int:
    """Sweep *targets* as the command line asks; return the exit status."""
    out = sys.stdout

    def on_host(result: Any) -> None:
        if args.json:
            emit_json(_host_record(result))
        elif not args.quiet:
            out.write(_host_line(result) + "\n")

    running = client.sweep(
        targets,
        count=args.count or 1,
        interval=args.interval,
        timeout=args.timeout if args.timeout is not None else 1.0,
        rate=args.rate if args.rate is not None else 1000.0,
        size=args.size,
        on_host=None if args.quiet and not args.json else on_host,
    )
    progress = None
    if len(targets) >= PROGRESS_FROM and sys.stderr.isatty() and not running.done.called:
        progress = _Progress(reactor, running)
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
    if args.json:
        emit_json(_summary_record(summary))
    else:
        if not args.quiet:
            out.write("\n")
        out.write(_summary_line(summary) + "\n")
    out.flush()
    return EXIT_OK if summary.received else EXIT_FAILED
