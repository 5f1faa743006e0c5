"""
``netproto discard``, ``chargen``, ``time`` and ``qotd``: the clients of the
other inetd small servers (TCP and UDP).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from netproto.cli._command import EXIT_OK, EXIT_USAGE, Subcommands, add_command
from netproto.cli._output import CommandError, emit_json, printable
from netproto.cli._services import _common, _failure, _read_stdin, parse_target

_MAX_COUNT = 1 << 30  # bytes a chargen or discard run may ask for: bounds memory


def _size(text: str) -> int:
    """A byte count: digits, optionally with K, M or G (powers of 1024)."""
    factors = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    cleaned = text.strip().lower()
    factor = factors.get(cleaned[-1:], 1)
    digits = cleaned[:-1] if factor != 1 else cleaned
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a byte count (e.g. 1000, 64K, 10M)")
    value = int(digits) * factor
    if value > _MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{text}: at most 1G")
    return value


def register(subcommands: Subcommands) -> None:
    """Add the discard, chargen, time and qotd commands."""
    discard = add_command(
        subcommands,
        "discard",
        _run_discard,
        help="send bytes to a discard server (RFC 863)",
        description="Send MESSAGE (or --count bytes, or standard input) to the discard\n"
        "server at HOST:PORT (port 9 if omitted): over TCP, half-close and wait for\n"
        "the server to close without answering; with --udp, in one datagram, then\n"
        "wait a moment for a port-unreachable error. Prints what was sent and how fast.\n\n"
        "Exit status 1 if the server refuses, does not close in time or answers;\n"
        "2 on usage errors.",
    )
    discard.add_argument("target", metavar="HOST:PORT", help="the server, e.g. 127.0.0.1:9")
    discard.add_argument("message", nargs="*", metavar="MESSAGE", help="text to send")
    discard.add_argument(
        "--count", type=_size, metavar="BYTES", help="send BYTES bytes of chargen text instead"
    )
    _common(discard)

    chargen = add_command(
        subcommands,
        "chargen",
        _run_chargen,
        help="read from a character generator (RFC 864)",
        description="Read --count bytes (default one line, 74) of the character stream of\n"
        "the chargen server at HOST:PORT (port 19 if omitted) over TCP, then close;\n"
        "with --udp, send one datagram of --count bytes (at most 512) and print the\n"
        "reply (a netproto server never answers more than it was sent). The bytes are\n"
        "written as they came; --json reports the count, the rate and whether they\n"
        "follow RFC 864's pattern of the 95 printable characters.\n\n"
        "Exit status 1 if the server refuses, closes early or does not answer in time;\n"
        "2 on usage errors.",
    )
    chargen.add_argument("target", metavar="HOST:PORT", help="the server, e.g. [::1]:19")
    chargen.add_argument(
        "--count", type=_size, default=74, metavar="BYTES", help="bytes to read (default 74)"
    )
    _common(chargen)

    time = add_command(
        subcommands,
        "time",
        _run_time,
        help="ask a time server (RFC 868) and show the clock offset, like rdate -p",
        description="Ask the time server at HOST:PORT (port 37 if omitted) for its clock,\n"
        "over TCP or, with --udp, with one datagram; print its time and its offset from\n"
        "the local clock (RFC 868 has whole seconds: good to about one). The 32-bit\n"
        "answer is read in the era nearest the local clock, so it stays right after\n"
        "the wrap of 2036-02-07.\n\n"
        "Exit status 1 if the server refuses, does not answer in time or answers\n"
        "nonsense; 2 on usage errors.",
    )
    time.add_argument("target", metavar="HOST:PORT", help="the server, e.g. 127.0.0.1:37")
    _common(time)

    qotd = add_command(
        subcommands,
        "qotd",
        _run_qotd,
        help="ask a quote-of-the-day server (RFC 865)",
        description="Ask the qotd server at HOST:PORT (port 17 if omitted) for a quote,\n"
        "over TCP or, with --udp, with one datagram, and print it.\n\n"
        "Exit status 1 if the server refuses, does not answer in time or answers\n"
        "nonsense; 2 on usage errors.",
    )
    qotd.add_argument("target", metavar="HOST:PORT", help="the server, e.g. 127.0.0.1:17")
    _common(qotd)


def _transport(args: argparse.Namespace) -> str:
    return "udp" if args.udp else "tcp"


def _rate(size: int, elapsed: float) -> float | None:
    return round(size / elapsed, 1) if elapsed > 0 else None


async def _run_discard(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.chargen import PERIOD
    from netproto.discard import ServiceError, discard_tcp, discard_udp

    host, port = parse_target(args.target, 9)
    if args.count is not None and args.message:
        raise CommandError("give MESSAGE or --count, not both", EXIT_USAGE, kind="usage")
    if args.count is not None:
        data = (PERIOD * (args.count // len(PERIOD) + 1))[: args.count]
    elif args.message:
        data = " ".join(args.message).encode("utf-8", "surrogateescape")
    else:
        data = await _read_stdin(reactor)
    if args.udp and len(data) > 65507:
        raise CommandError(f"{len(data)} bytes do not fit in one UDP datagram (at most 65507)")
    started = reactor.seconds()
    try:
        if args.udp:
            sent = await discard_udp(reactor, host, port, data, grace=min(0.5, args.timeout))
        else:
            sent = await discard_tcp(reactor, host, port, data, timeout=args.timeout)
    except ServiceError as e:
        raise _failure(e, host, port) from None
    elapsed = reactor.seconds() - started
    if args.json:
        emit_json(
            {
                "host": host,
                "port": port,
                "transport": _transport(args),
                "bytes": sent,
                "time_ms": round(elapsed * 1000, 3),
                "bytes_per_second": None if args.udp else _rate(sent, elapsed),
            }
        )
    else:
        print(f"{sent} bytes discarded in {elapsed:.3f} s")
    return EXIT_OK


async def _run_chargen(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.chargen import MAX_UDP_REPLY, ServiceError, chargen_tcp, chargen_udp, check_stream

    host, port = parse_target(args.target, 19)
    if args.udp and args.count > MAX_UDP_REPLY:
        raise CommandError(
            f"--count {args.count}: a UDP chargen reply is at most {MAX_UDP_REPLY} bytes",
            EXIT_USAGE,
            kind="usage",
        )
    started = reactor.seconds()
    try:
        if args.udp:
            got = await chargen_udp(reactor, host, port, args.count, timeout=args.timeout)
        else:
            got = await chargen_tcp(reactor, host, port, args.count, timeout=args.timeout)
    except ServiceError as e:
        raise _failure(e, host, port) from None
    elapsed = reactor.seconds() - started
    if args.json:
        emit_json(
            {
                "host": host,
                "port": port,
                "transport": _transport(args),
                "bytes": len(got),
                "lines": got.count(b"\r\n"),
                "rfc864": check_stream(got),
                "time_ms": round(elapsed * 1000, 3),
                "bytes_per_second": _rate(len(got), elapsed),
            }
        )
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(got)
        sys.stdout.buffer.flush()
    return EXIT_OK


async def _run_time(reactor: Any, args: argparse.Namespace) -> int:
    import time as stdtime

    from netproto.time import ServiceError, time_tcp, time_udp

    host, port = parse_target(args.target, 37)
    try:
        if args.udp:
            answer = await time_udp(reactor, host, port, timeout=args.timeout)
        else:
            answer = await time_tcp(reactor, host, port, timeout=args.timeout)
    except ServiceError as e:
        raise _failure(e, host, port) from None
    when = stdtime.gmtime(answer.seconds)
    iso = stdtime.strftime("%Y-%m-%dT%H:%M:%SZ", when)
    if args.json:
        emit_json(
            {
                "host": host,
                "port": port,
                "transport": _transport(args),
                "time": answer.seconds,
                "iso": iso,
                "era": answer.era,
                "offset": round(answer.offset, 3),
                "time_ms": round(answer.round_trip * 1000, 3),
            }
        )
    else:
        local = stdtime.strftime("%a %b %e %H:%M:%S %Z %Y", stdtime.localtime(answer.seconds))
        print(f"{printable(args.target)}\t{local}\t(offset {answer.offset:+.1f} s)")
    return EXIT_OK


async def _run_qotd(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.qotd import ServiceError, qotd_tcp, qotd_udp

    host, port = parse_target(args.target, 17)
    started = reactor.seconds()
    try:
        if args.udp:
            quote = await qotd_udp(reactor, host, port, timeout=args.timeout)
        else:
            quote = await qotd_tcp(reactor, host, port, timeout=args.timeout)
    except ServiceError as e:
        raise _failure(e, host, port) from None
    elapsed = reactor.seconds() - started
    text = quote.decode("utf-8", "backslashreplace").replace("\r\n", "\n").rstrip("\n")
    if args.json:
        emit_json(
            {
                "host": host,
                "port": port,
                "transport": _transport(args),
                "quote": text,
                "time_ms": round(elapsed * 1000, 3),
            }
        )
    else:
        print("\n".join(printable(line) for line in text.split("\n")))
    return EXIT_OK
