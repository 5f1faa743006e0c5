"""
``netproto ping``: ping(8) for one host, an fping-like sweep for several
hosts or CIDR ranges.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any

from netproto._output import CommandError, emit_json, printable
from netproto.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_command

_DESCRIPTION = """\
Send ICMP echo requests (IPv4 and IPv6).

With one HOST, behave like ping(8): one line per reply (DUP! for duplicates,
ICMP errors such as Destination Host Unreachable), the statistics block at
the end or on Ctrl-C. Without -c or -w, ping until interrupted.

With several HOSTs or a CIDR range (127.0.0.0/24), sweep like fping: one
line per target, alive or unreachable, then a summary. A sweep sends one
probe per target (-c for more) at --rate probes a second (default 1000;
0: as fast as the machine allows) and waits -W seconds (default 1) for each.

Needs a raw ICMP socket (root or CAP_NET_RAW) or a Linux unprivileged ping
socket (net.ipv4.ping_group_range must include your group); --socket picks
one, the default tries raw first.

Exit status: 0 if any reply came back, 1 if none (or on a failure such as an
unknown host), 2 on usage errors."""


def register(subcommands: argparse._SubParsersAction[Any]) -> None:
    """Add the ping command."""
    parser = add_command(
        subcommands, "ping", _run, help="send ICMP echo requests (ping, sweeps)",
        description=_DESCRIPTION,
    )
    parser.add_argument("-c", dest="count", type=int, metavar="COUNT",
                        help="stop after COUNT probes (per target in a sweep)")
    parser.add_argument("-i", dest="interval", type=float, metavar="INTERVAL", default=1.0,
                        help="seconds between probes to a target (default 1)")
    parser.add_argument("-W", dest="timeout", type=float, metavar="TIMEOUT",
                        help="seconds to wait for each reply (default 10; 1 in a sweep)")
    parser.add_argument("-w", dest="deadline", type=float, metavar="DEADLINE",
                        help="stop after DEADLINE seconds whatever happened")
    parser.add_argument("-s", dest="size", type=int, metavar="SIZE", default=56,
                        help="payload bytes per probe (default 56)")
    parser.add_argument("-t", dest="ttl", type=int, metavar="TTL",
                        help="IPv4 time to live / IPv6 hop limit")
    parser.add_argument("-I", dest="source", metavar="ADDR",
                        help="send from this local address or interface")
    family = parser.add_mutually_exclusive_group()
    family.add_argument("-4", dest="version", action="store_const", const=4,
                        help="IPv4 only")
    family.add_argument("-6", dest="version", action="store_const", const=6,
                        help="IPv6 only")
    parser.add_argument("-q", dest="quiet", action="store_true",
                        help="quiet: only the header and the statistics")
    parser.add_argument("--rate", type=float, metavar="N",
                        help="sweep: at most N probes a second (default 1000, 0: no limit)")
    parser.add_argument("--socket", choices=("auto", "raw", "dgram"), default="auto",
                        help="raw socket, unprivileged ping socket, or auto (default)")
    parser.add_argument("hosts", nargs="+", metavar="HOST",
                        help="an address, a host name, or a CIDR range (a sweep)")


def _usage(message: str) -> CommandError:
    return CommandError(message, EXIT_USAGE)


def _check(args: argparse.Namespace) -> None:
    """Refuse option values ping(8) would refuse, naming the option."""
    if args.count is not None and args.count < 1:
        raise _usage(f"-c {args.count}: COUNT must be at least 1")
    if not args.interval >= 0:
        raise _usage(f"-i {args.interval}: INTERVAL must be 0 or more seconds")
    if args.interval < 0.002 and os.geteuid() != 0:
        raise _usage(f"-i {args.interval}: intervals under 0.002 s need root")
    if args.timeout is not None and not args.timeout > 0:
        raise _usage(f"-W {args.timeout}: TIMEOUT must be more than 0 seconds")
    if args.deadline is not None and not args.deadline > 0:
        raise _usage(f"-w {args.deadline}: DEADLINE must be more than 0 seconds")
    if not 0 <= args.size <= 65507:
        raise _usage(f"-s {args.size}: SIZE must be 0 to 65507")
    if args.ttl is not None and not 1 <= args.ttl <= 255:
        raise _usage(f"-t {args.ttl}: TTL must be 1 to 255")
    if args.rate is not None and not args.rate >= 0:
        raise _usage(f"--rate {args.rate}: N must be 0 or more")


def _source(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """-I: (address, None) or (None, interface)."""
    from netproto.util import AddressError, canonical, parse_ip

    if args.source is None:
        return None, None
    try:
        address = parse_ip(args.source)
    except AddressError:
        try:
            socket.if_nametoindex(args.source)
        except OSError:
            raise _usage(
                f"-I {printable(args.source)}: neither a local address nor an interface"
            ) from None
        return None, args.source
    if args.version is not None and address.version != args.version:
        raise _usage(f"-I {args.source}: not an IPv{args.version} address")
    return canonical(address), None


def _looks_literal(host: str) -> bool:
    return ":" in host or (bool(host) and all(c.isdigit() or c == "." for c in host))


async def _resolve(reactor: Any, host: str, version: int | None) -> str:
    """An address for HOST: the literal itself, or the first the resolver gives."""
    from twisted.internet.threads import deferToThreadPool

    from netproto.ping import expand_targets
    from netproto.util import AddressError, parse_ip

    try:
        address = parse_ip(host)
    except AddressError as e:
        if _looks_literal(host):
            raise CommandError(f"{printable(host)}: {e}") from None
    else:
        if version is not None and address.version != version:
            raise _usage(f"{host}: not an IPv{version} address")
        return expand_targets([host])[0]
    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(version or 0, socket.AF_UNSPEC)
    try:
        infos = await deferToThreadPool(
            reactor, reactor.getThreadPool(), socket.getaddrinfo, host, None, family,
            socket.SOCK_RAW,
        )
    except (socket.gaierror, UnicodeError) as e:
        reason = e.strerror if isinstance(e, socket.gaierror) else str(e)
        raise CommandError(f"{printable(host)}: {reason}") from None
    for info in infos:
        if info[0] in (socket.AF_INET, socket.AF_INET6):
            return expand_targets([str(info[4][0]).partition("%")[0]])[0]
    raise CommandError(f"{printable(host)}: no address")


async def _run(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.ping import PingClient, PingPermissionError, expand_targets
    from netproto.util import AddressError

    _check(args)
    source, interface = _source(args)
    sweep = len(args.hosts) > 1 or any("/" in h for h in args.hosts)
    if sweep:
        targets: list[str] = []
        for host in args.hosts:
            if "/" in host:
                try:
                    targets.extend(expand_targets([host], args.version))
                except AddressError as e:
                    raise _usage(f"{printable(host)}: {e}") from None
            else:
                targets.append(await _resolve(reactor, host, args.version))
        targets = expand_targets(targets)
    else:
        target = await _resolve(reactor, args.hosts[0], args.version)
    client = PingClient(reactor, args.socket, ttl=args.ttl, source=source, interface=interface)
    try:
        try:
            for version in sorted({6 if ":" in t else 4 for t in (targets if sweep else [target])}):
                client.socket_for(version)
        except PingPermissionError as e:
            raise CommandError(str(e)) from None
        except AddressError as e:
            raise _usage(f"-I {args.source}: {e}") from None
        except OSError as e:
            raise CommandError(f"cannot set up the ICMP socket: {e.strerror or e}") from None
        if sweep:
            from netproto._pingcli_sweep import run_sweep

            return await run_sweep(reactor, client, targets, args)
        return await _run_one(reactor, client, args.hosts[0], target, source, args)
    finally:
        client.close()


def format_ms(seconds: float) -> str:
    """A time in milliseconds with ping(8)'s precision: 0.045, 1.23, 12.3, 123."""
    ms = seconds * 1000.0
    if ms >= 99.95:
        return f"{ms:.0f}"
    if ms >= 9.995:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


async def _run_one(
    reactor: Any, client: Any, host: str, target: str, source: str | None,
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
        _say(header)

    def on_result(result: ProbeResult) -> None:
        if args.json:
            if result.kind != "late":
                emit_json(_result_record(result))
        elif not args.quiet:
            line = _result_line(result)
            if line is not None:
                _say(line, sys.stderr if result.kind == "send-error" else sys.stdout)

    timeout = args.timeout if args.timeout is not None else 10.0
    running = client.ping(target, count=args.count, interval=args.interval, timeout=timeout,
                          deadline=args.deadline, size=args.size, on_result=on_result)
    summary = await finish(running)
    if args.json:
        emit_json(_summary_record(summary))
    else:
        _say("")
        for line in _summary_lines(shown, summary):
            _say(line)
    return EXIT_OK if summary.received else EXIT_FAILED


async def finish(running: Any) -> Any:
    """
    Wait for a running ping or sweep to end and return its summary; on Ctrl-C
    (the command's Deferred cancelled) stop it and return the summary so far.
    """
    from twisted.internet.defer import CancelledError, Deferred

    waiter: Deferred[Any] = Deferred()
    running.done.addBoth(_relay, waiter)
    try:
        return await waiter
    except CancelledError:
        running.stop()
        return running.done.result


def _relay(result: Any, waiter: Any) -> Any:
    """
    Pass *result* on to *waiter* (unless it was cancelled): a summary is
    kept for later reads, a failure (the output went away) is handed over.
    """
    from twisted.python.failure import Failure

    if isinstance(result, Failure):
        if not waiter.called:
            waiter.errback(result)
        return None
    if not waiter.called:
        waiter.callback(result)
    return result


def _say(line: str, stream: Any = None) -> None:
    stream = stream or sys.stdout
    stream.write(line + "\n")
    stream.flush()


def _result_line(result: Any) -> str | None:
    kind = result.kind
    if kind in ("reply", "duplicate", "damaged"):
        ttl = f" ttl={result.ttl}" if result.ttl is not None else ""
        line = (f"{result.bytes} bytes from {result.source}: icmp_seq={result.seq}{ttl} "
                f"time={format_ms(result.rtt)} ms")
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
        "host": result.host, "kind": result.kind, "from": result.source, "seq": result.seq,
        "ttl": result.ttl, "bytes": result.bytes, "time_ms": _ms(result.rtt),
        "dup": result.kind == "duplicate", "damaged": result.kind == "damaged",
        "error": result.error,
    }


def _summary_record(summary: Any) -> dict[str, Any]:
    return {
        "host": summary.host, "transmitted": summary.transmitted,
        "received": summary.received, "duplicates": summary.duplicates,
        "damaged": summary.damaged, "errors": summary.errors,
        "loss": round(summary.loss, 3), "min_ms": _ms(summary.min),
        "avg_ms": _ms(summary.avg), "max_ms": _ms(summary.max), "mdev_ms": _ms(summary.mdev),
        "time_ms": round(summary.elapsed * 1000.0), "summary": True,
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
