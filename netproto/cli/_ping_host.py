"""
``netproto ping HOST``: ping(8)'s output for one host, the reply lines and
the statistics block, or one JSON object per result and a summary.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from typing import Any

from netproto.cli._command import EXIT_FAILED, EXIT_OK, finish
from netproto.cli._names import Names
from netproto.cli._output import emit_json, format_ms, ms, printable, say

__all__ = ["run_one"]


async def run_one(
    reactor: Any,
    client: Any,
    host: str,
    target: str,
    source: str | None,
    args: argparse.Namespace,
) -> int:
    from netproto.ping import ProbeResult
    from netproto.util import AddressError, parse_ip

    shown = printable(host)
    try:
        parse_ip(host, allow_scope=True)
        given_address = True
    except AddressError:
        given_address = False
    lines = _Lines(Names(reactor, enabled=not args.numeric and (args.names or not given_address)))
    if not args.json:
        if args.pattern:
            say("PATTERN: 0x" + args.pattern.hex())
        origin = f" from {source} :" if source else ""
        if ":" in target:
            header = f"PING {shown}({target}){origin} {args.size} data bytes"
        else:
            header = f"PING {shown} ({target}){origin} {args.size}({args.size + 28}) bytes of data."
        say(header)

    def on_result(result: ProbeResult) -> None:
        if args.json:
            if result.kind != "late":
                emit_json(_result_record(result))
        elif not args.quiet and result.kind in _SHOWN:
            lines.add(result, time.time() if args.timestamps else None)

    timeout = args.timeout if args.timeout is not None else 10.0
    running = client.ping(
        target,
        count=args.count,
        interval=args.interval,
        timeout=timeout,
        deadline=args.deadline,
        size=args.size,
        # -q without --json shows no probe: no call per probe either.
        on_result=None if args.quiet and not args.json else on_result,
        pattern=args.pattern or b"",
        outstanding=args.outstanding,
        # Nothing here iterates: the results go to on_result, and -i 0 goes back to back.
        iterate=False,
    )
    summary = await finish(running)
    await lines.names.settled()
    lines.flush()
    if args.json:
        emit_json(_summary_record(summary))
    else:
        say("")
        for line in _summary_lines(shown, summary):
            say(line)
    if not summary.received:
        return EXIT_FAILED
    if args.count is not None and args.deadline is not None and summary.received < args.count:
        return EXIT_FAILED  # iputils: -c and -w, fewer replies than COUNT by the deadline
    return EXIT_OK


_SHOWN = frozenset({"reply", "duplicate", "damaged", "error", "send-error", "outstanding"})


class _Lines:
    """
    The per-probe lines, printed in the order their results came, each once
    the name of its sender is known (a reverse lookup that ping(8) would
    wait for; without names, at once).
    """

    def __init__(self, names: Names) -> None:
        self.names = names
        names.on_known = self.flush
        self._queue: deque[tuple[Any, float | None]] = deque()

    def add(self, result: Any, stamp: float | None) -> None:
        """Queue the line of *result* (*stamp*: its -D time), and print what is ready."""
        self.names.start(result.source)
        self._queue.append((result, stamp))
        self.flush()

    def flush(self) -> None:
        """Print the queued lines whose sender's name is known, in order."""
        while self._queue and self.names.ready(self._queue[0][0].source):
            result, stamp = self._queue.popleft()
            line = _result_line(result, self._who(result.source))
            if stamp is not None:
                line = f"[{stamp:.6f}] {line}"
            say(line, sys.stderr if result.kind == "send-error" else sys.stdout)

    def _who(self, address: str | None) -> str:
        """The sender as ping(8) shows it: ``name (address)`` with names, else the address."""
        if not self.names.enabled or address is None:
            return str(address)
        return f"{printable(self.names.known(address) or address)} ({address})"


def _result_line(result: Any, who: str) -> str:
    kind = result.kind
    if kind in ("reply", "duplicate", "damaged"):
        ttl = f" ttl={result.ttl}" if result.ttl is not None else ""
        line = (
            f"{result.bytes} bytes from {who}: icmp_seq={result.seq}{ttl} "
            f"time={format_ms(result.rtt)} ms"
        )
        if kind == "duplicate":
            line += " (DUP!)"
        elif kind == "damaged":
            line += " (BAD CHECKSUM!)"
        return line
    if kind == "error":
        return f"From {who} icmp_seq={result.seq} {result.error}"
    if kind == "outstanding":
        return f"no answer yet for icmp_seq={result.seq}"
    return f"netproto ping: icmp_seq={result.seq}: {result.error}"


def _result_record(result: Any) -> dict[str, Any]:
    return {
        "host": result.host,
        "kind": result.kind,
        "from": result.source,
        "seq": result.seq,
        "ttl": result.ttl,
        "bytes": result.bytes,
        "time_ms": ms(result.rtt),
        "dup": result.kind == "duplicate",
        "damaged": result.kind == "damaged",
        "error": result.error,
    }


def _summary_record(summary: Any) -> dict[str, Any]:
    return {
        "host": summary.host,
        "transmitted": summary.transmitted,
        "received": summary.received,
        "duplicates": summary.duplicates,
        "damaged": summary.damaged,
        "errors": summary.errors,
        "loss": round(summary.loss, 3),
        "min_ms": ms(summary.min),
        "avg_ms": ms(summary.avg),
        "max_ms": ms(summary.max),
        "mdev_ms": ms(summary.mdev),
        "time_ms": round(summary.elapsed * 1000.0),
        "summary": True,
    }


def _summary_lines(shown: str, summary: Any) -> list[str]:
    counts = f"{summary.transmitted} packets transmitted, {summary.received} received"
    if summary.duplicates:
        counts += f", +{summary.duplicates} duplicates"
    if summary.damaged:
        counts += f", +{summary.damaged} corrupted"
    if summary.errors:
        counts += f", +{summary.errors} errors"
    counts += f", {summary.loss:g}% packet loss, time {summary.elapsed * 1000.0:.0f}ms"
    lines = [f"--- {shown} ping statistics ---", counts]
    if summary.received:
        lines.append(
            f"rtt min/avg/max/mdev = {summary.min * 1000:.3f}/{summary.avg * 1000:.3f}/"
            f"{summary.max * 1000:.3f}/{summary.mdev * 1000:.3f} ms"
        )
    else:
        lines.append("")  # iputils ends the block with an empty line then
    return lines
