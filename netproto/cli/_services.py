"""
``netproto daytime`` and ``netproto echo``: the daytime and echo clients
(TCP and UDP).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from netproto.cli._command import EXIT_OK, EXIT_USAGE, Subcommands, add_command, seconds
from netproto.cli._output import CommandError, emit_json, printable
from netproto.util import AddressError, split_host_port

_MAX_STDIN = 65527 * 1024  # far more than anyone echoes; bounds memory


def register(subcommands: Subcommands) -> None:
    """Add the daytime and echo commands."""
    daytime = add_command(
        subcommands,
        "daytime",
        _run_daytime,
        help="ask a daytime server (RFC 867) for the time",
        description="Ask the daytime server at HOST:PORT (port 13 if omitted) for its time\n"
        "line, over TCP or, with --udp, with one datagram. IPv6 literals are written\n"
        "in brackets: [::1]:13.\n\n"
        "Exit status 1 if the server refuses, does not answer in time or answers\n"
        "nonsense; 2 on usage errors.",
    )
    daytime.add_argument("target", metavar="HOST:PORT", help="the server, e.g. 127.0.0.1:13")
    _common(daytime)

    echo = add_command(
        subcommands,
        "echo",
        _run_echo,
        help="send bytes to an echo server (RFC 862) and check they come back",
        description="Send MESSAGE (or, without one, standard input) to the echo server at\n"
        "HOST:PORT (port 7 if omitted), over TCP (then half-close) or, with --udp, in\n"
        "one datagram; check that the same bytes come back and print them.\n"
        "Several words are joined with spaces, as echo(1) does, and sent without a\n"
        "newline. IPv6 literals are written in brackets: [::1]:7.\n\n"
        "What came back is written as it is (byte for byte, like nc) when standard\n"
        "output is a file or a pipe, or with --raw; on a terminal, as text with\n"
        "control characters and invalid UTF-8 escaped (\\x1b). A MESSAGE comes back\n"
        "as a line (a newline is added, as echo(1) adds one); standard input comes\n"
        "back exactly as it went.\n"
        "With --json, 'echo' holds the bytes as text when they are UTF-8, else in\n"
        "base64, and 'encoding' says which ('utf-8' or 'base64').\n\n"
        "Exit status 1 if the server refuses, does not answer in time or sends back\n"
        "other bytes; 2 on usage errors.",
    )
    echo.add_argument("target", metavar="HOST:PORT", help="the server, e.g. [::1]:7")
    echo.add_argument(
        "message",
        nargs="*",
        metavar="MESSAGE",
        help="the text to send, words joined with spaces (default: stdin)",
    )
    echo.add_argument(
        "--raw",
        action="store_true",
        help="write the bytes that came back as they are, even on a terminal",
    )
    _common(echo)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--udp", action="store_true", help="use UDP instead of TCP")
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=5.0,
        metavar="SECONDS",
        help="give up after SECONDS in all (default 5)",
    )


def _failure(error: Exception, host: str, port: int) -> CommandError:
    """The CommandError of a failed exchange, its JSON kind the error's (or its lookup's)."""
    from netproto.daytime import (
        ProtocolError,
        RefusedError,
        ServiceTimeoutError,
        UnreachableError,
    )
    from netproto.lookup import InvalidLookupError, LookupTimeoutError, NameNotFoundError

    kind = "failed"
    cause = error.__cause__
    if isinstance(cause, InvalidLookupError):
        kind = "invalid"
    elif isinstance(cause, NameNotFoundError):
        kind = "not-found"
    elif isinstance(cause, LookupTimeoutError) or isinstance(error, ServiceTimeoutError):
        kind = "timeout"
    elif cause is not None:
        kind = "server-failure"
    elif isinstance(error, RefusedError):
        kind = "refused"
    elif isinstance(error, UnreachableError):
        kind = "unreachable"
    elif isinstance(error, ProtocolError):
        kind = "protocol"
    return CommandError(printable(str(error)), kind=kind, context={"host": host, "port": port})


def parse_target(text: str, default_port: int) -> tuple[str, int]:
    """
    Split ``HOST:PORT``, ``[V6]:PORT``, ``HOST``, ``[V6]`` or a bare IPv6
    literal into a host and a port; :class:`CommandError` (status 2) if
    malformed.
    """
    try:
        return split_host_port(text, default_port)
    except AddressError as e:
        raise CommandError(f"{printable(text)}: {e}", EXIT_USAGE, kind="usage") from None


async def _read_stdin(reactor: Any) -> bytes:
    """
    Standard input up to EOF (at most one byte over the cap), read in a daemon
    thread so that Ctrl-C still cancels the command while a terminal is typed at.
    """
    import threading

    from twisted.internet.defer import Deferred

    if sys.stdin is None:
        raise CommandError("no standard input to read: give MESSAGE", EXIT_USAGE)
    done: Deferred[bytes] = Deferred()
    fd = sys.stdin.fileno()

    def read() -> None:
        # Raw reads on the descriptor: a buffered reader's lock held by this
        # thread would abort the interpreter at exit after a Ctrl-C.
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= _MAX_STDIN:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)
        except OSError as e:
            reactor.callFromThread(done.errback, CommandError(f"cannot read standard input: {e}"))
        else:
            reactor.callFromThread(done.callback, data)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return await done


async def _run_daytime(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.daytime import ServiceError, daytime_tcp, daytime_udp

    host, port = parse_target(args.target, 13)
    timeout = args.timeout
    started = reactor.seconds()
    try:
        if args.udp:
            line = await daytime_udp(reactor, host, port, timeout=timeout)
        else:
            line = await daytime_tcp(reactor, host, port, timeout=timeout)
    except ServiceError as e:
        raise _failure(e, host, port) from None
    elapsed = reactor.seconds() - started
    text = line.decode("ascii", "backslashreplace").rstrip("\r\n")
    if args.json:
        emit_json(
            {
                "host": host,
                "port": port,
                "transport": "udp" if args.udp else "tcp",
                "line": text,
                "time_ms": round(elapsed * 1000, 3),
            }
        )
    else:
        print(printable(text))
    return EXIT_OK


async def _run_echo(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.echo import MAX_UDP_IPV6, ServiceError, echo_tcp, echo_udp

    host, port = parse_target(args.target, 7)
    timeout = args.timeout
    if args.message:
        data = " ".join(args.message).encode("utf-8", "surrogateescape")
    else:
        data = await _read_stdin(reactor)
        if len(data) > _MAX_STDIN:
            raise CommandError(f"standard input longer than {_MAX_STDIN} bytes")
    if args.udp and len(data) > MAX_UDP_IPV6:
        raise CommandError(
            f"{len(data)} bytes do not fit in one UDP datagram (at most 65507 over IPv4, "
            "65527 over IPv6)"
        )
    started = reactor.seconds()
    try:
        if args.udp:
            got = await echo_udp(reactor, host, port, data, timeout=timeout)
        else:
            got = await echo_tcp(reactor, host, port, data, timeout=timeout)
    except ServiceError as e:
        raise _failure(e, host, port) from None
    elapsed = reactor.seconds() - started
    if args.json:
        echoed, encoding = _json_bytes(got)
        emit_json(
            {
                "host": host,
                "port": port,
                "transport": "udp" if args.udp else "tcp",
                "bytes": len(got),
                "match": True,
                "echo": echoed,
                "encoding": encoding,
                "time_ms": round(elapsed * 1000, 3),
            }
        )
    elif args.raw or not sys.stdout.isatty():
        sys.stdout.flush()
        sys.stdout.buffer.write(got + b"\n" if args.message else got)
        sys.stdout.buffer.flush()
    else:
        text = got.decode("utf-8", "backslashreplace")
        print(printable(text[:-1] if text.endswith("\n") else text), flush=True)
    return EXIT_OK


def _json_bytes(data: bytes) -> tuple[str, str]:
    """*data* for JSON, losslessly: as text if it is UTF-8, else in base64; and which."""
    import base64

    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"
