"""
``netproto ping HOST``: ping(8)'s output for one host, the reply lines and
the statistics block, or one JSON object per result and a summary.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from netproto.cli._command import EXIT_FAILED, EXIT_OK, finish
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

    shown = printable(host)
    if not args.json:
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
        elif not args.quiet:
            line = _result_line(result)
            if line is not None:
                say(line, sys.stderr if result.kind == "send-error" else sys.stdout)

    timeout = args.timeout if args.timeout is not None else 10.0
    running = client.ping(
        target,
        count=args.count,
        interval=args.interval,
        timeout=timeout,
        deadline=args.deadline,
        size=args.size,
        on_result=on_result,
    )
    summary = await finish(running)
    if args.json:
        emit_json(_summary_record(summary))
    else:
        say("")
        for line in _summary_lines(shown, summary):
            say(line)
    return EXIT_OK if summary.received else EXIT_FAILED


def _result_line(result: Any) -> str | None:
    kind = result.kind
    if kind in ("reply", "duplicate", "damaged"):
        ttl = f" ttl={result.ttl}" if result.ttl is not None else ""
        line = (
            f"{result.bytes} bytes from {result.source}: icmp_seq={result.seq}{ttl} "
            f"time={format_ms(result.rtt)} ms"
        )
        if kind == "duplicate":
            line += " (DUP!)"
        elif kind == "damaged":
            line += " (BAD CHECKSUM!)"
        return line
    if kind == "error":
        return f"From {result.source} icmp_seq={result.seq} {result.error}"
    if kind == "send-error":
        return f"netproto ping: icmp_seq={result.seq}: {result.error}"
    return None


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
