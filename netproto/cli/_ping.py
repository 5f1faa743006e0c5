"""
``netproto ping``: ping(8) for one host, an fping-like sweep for several
hosts or CIDR ranges.
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

from netproto.cli._command import EXIT_USAGE, ExitTable, Subcommands, add_command, usage_error
from netproto.cli._lookup import lookup_failure
from netproto.cli._output import CommandError, printable
from netproto.cli._ping_host import run_one
from netproto.cli._ping_sweep import (
    SWEEP_SYSTEM,
    SWEEP_USAGE,
    SweepRequest,
    gather_targets,
    generated,
    read_target_file,
    run_sweep,
)
from netproto.util import positive_seconds

_DESCRIPTION = """\
Send ICMP echo requests (IPv4 and IPv6).

With one HOST, behave like ping(8): one line per reply (DUP! for duplicates,
ICMP errors such as Destination Host Unreachable), the statistics block at
the end or on Ctrl-C. Without -c or -w, ping until interrupted.

With several HOSTs, a CIDR range (127.0.0.0/24), -g or -f, sweep like
fping: one line per target on standard output, alive or unreachable, then a
summary line on standard error (-q: neither; -a, -u: bare lists of the
alive, the unreachable). A sweep sends one probe per target (-c for more)
at --rate probes a second (default 100, fping's 10 ms interval; 0: as fast
as the machine allows), waits -W seconds (default 1) for each, and tries
the unanswered -r more times, each wait -B times the one before. A name
that cannot be resolved is reported and the sweep goes on (exit 2). For
fping's own flags (-t ms, -i ms, -b, -s statistics), use netproto fping.

Needs a raw ICMP socket (root or CAP_NET_RAW) or a Linux unprivileged ping
socket, which needs no privilege once net.ipv4.ping_group_range admits your
group; --socket picks one, the default (auto) tries raw first. To allow ping
sockets for every group, as root:

    sysctl -w net.ipv4.ping_group_range="0 2147483647"

and, to keep it across reboots, the line
"net.ipv4.ping_group_range = 0 2147483647" in a file of /etc/sysctl.d/.

Options -n, -H, -D, -O and -p are ping(8)'s, for one host."""

PING_EXITS: ExitTable = (
    ("0", "one host: at least one reply came back (as iputils ping)"),
    ("1", "one host: no reply; or, with -c and -w, fewer than COUNT replies by the deadline"),
    ("2", "one host: any other error: unknown host, usage error, no ICMP socket"),
    ("0", "sweep: every target answered (with --any: at least one)"),
    ("1", "sweep: some target did not answer"),
    ("2", "sweep: a host name was not found"),
    ("3", "sweep: invalid arguments (usage error)"),
    ("4", "sweep: a system call failed (no ICMP socket)"),
    ("130", "interrupted before the statistics (a single ping reports them, then exits 0 or 1)"),
)
"""The exit statuses of ping: iputils' for one host, fping's for a sweep."""


def register(subcommands: Subcommands) -> None:
    """Add the ping command."""
    parser = add_command(
        subcommands,
        "ping",
        _run,
        help="send ICMP echo requests (ping, sweeps)",
        description=_DESCRIPTION,
        exits=PING_EXITS,
    )
    parser.add_argument(
        "-c",
        dest="count",
        type=int,
        metavar="COUNT",
        help="stop after COUNT probes (per target in a sweep)",
    )
    parser.add_argument(
        "-i",
        dest="interval",
        type=float,
        metavar="INTERVAL",
        default=1.0,
        help="seconds between probes to a target (default 1)",
    )
    parser.add_argument(
        "-W",
        dest="timeout",
        type=float,
        metavar="TIMEOUT",
        help="seconds to wait for each reply (default 10; 1 in a sweep)",
    )
    parser.add_argument(
        "-w",
        dest="deadline",
        type=float,
        metavar="DEADLINE",
        help="stop after DEADLINE seconds whatever happened",
    )
    parser.add_argument(
        "-s",
        dest="size",
        type=int,
        metavar="SIZE",
        default=56,
        help="payload bytes per probe (default 56)",
    )
    parser.add_argument(
        "-t", dest="ttl", type=int, metavar="TTL", help="IPv4 time to live / IPv6 hop limit"
    )
    parser.add_argument(
        "-I", dest="source", metavar="ADDR", help="send from this local address or interface"
    )
    family = parser.add_mutually_exclusive_group()
    family.add_argument("-4", dest="version", action="store_const", const=4, help="IPv4 only")
    family.add_argument("-6", dest="version", action="store_const", const=6, help="IPv6 only")
    parser.add_argument(
        "-q", dest="quiet", action="store_true", help="quiet: only the header and the statistics"
    )
    names = parser.add_mutually_exclusive_group()
    names.add_argument(
        "-n",
        dest="numeric",
        action="store_true",
        help="one host: show addresses only, no names (the default for an address given)",
    )
    names.add_argument(
        "-H",
        dest="names",
        action="store_true",
        help="one host: show the name of every replier, even for an address given",
    )
    parser.add_argument(
        "-D",
        dest="timestamps",
        action="store_true",
        help="one host: start each line with the time, [seconds.microseconds] since 1970",
    )
    parser.add_argument(
        "-O",
        dest="outstanding",
        action="store_true",
        help="one host: say 'no answer yet for icmp_seq=N' when the next probe goes unanswered",
    )
    parser.add_argument(
        "-p",
        dest="pattern",
        type=_pattern,
        metavar="PATTERN",
        help="one host: fill the payload with these hex bytes (up to 16: -p ff00)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        metavar="N",
        help="sweep: at most N probes a second (default 100, 0: no limit)",
    )
    add_sweep_arguments(parser)
    parser.add_argument(
        "--socket",
        choices=("auto", "raw", "dgram"),
        default="auto",
        help="raw socket, unprivileged ping socket, or auto (default)",
    )
    parser.add_argument(
        "hosts",
        nargs="*",
        metavar="HOST",
        help="an address, a host name, or a CIDR range (a sweep)",
    )


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags fping and ping's sweeps share: -a -u -f -g -r -B --any."""
    parser.add_argument(
        "-a",
        "--alive",
        dest="alive",
        action="store_true",
        help="sweep: list the alive targets only",
    )
    parser.add_argument(
        "-u",
        "--unreach",
        dest="unreachable",
        action="store_true",
        help="sweep: list the unreachable targets only",
    )
    parser.add_argument(
        "-f",
        "--file",
        dest="file",
        metavar="FILE",
        help="sweep: read targets from FILE, one a line, # comments (-: standard input)",
    )
    parser.add_argument(
        "-g",
        "--generate",
        dest="generate",
        action="store_true",
        help="sweep: the operands are one CIDR range, or a START and an END address",
    )
    parser.add_argument(
        "-r",
        "--retry",
        dest="retries",
        type=int,
        metavar="N",
        help="sweep: try the unanswered N more times (one probe per target)",
    )
    parser.add_argument(
        "-B",
        "--backoff",
        dest="backoff",
        type=float,
        metavar="F",
        help="sweep: each retry waits F times longer than the try before (default 1.5)",
    )
    parser.add_argument(
        "--any",
        action="store_true",
        help="sweep: exit 0 when at least one target answered (fping: only when all did)",
    )


def _pattern(text: str) -> bytes:
    """-p: up to 16 bytes in hex, two digits each (a last single digit is one byte), as ping(8)."""
    if not text or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise argparse.ArgumentTypeError(f"patterns must be given as hex digits: {text!r}")
    if len(text) > 32:
        raise argparse.ArgumentTypeError(f"at most 16 bytes (32 hex digits), not {len(text)}")
    return bytes(int(text[i : i + 2], 16) for i in range(0, len(text), 2))


MAX_SIZE = {4: 65507, 6: 65527}
"""The largest -s: what fits in an IPv4 packet (65535 - 20 - 8), an IPv6 payload (65535 - 8)."""


def _check(args: argparse.Namespace) -> None:
    """Refuse option values ping(8) would refuse, naming the option."""
    if args.count is not None and args.count < 1:
        raise usage_error(f"-c {args.count}: COUNT must be at least 1")
    for flag, name, value, zero in (
        ("-i", "INTERVAL", args.interval, True),
        ("-W", "TIMEOUT", args.timeout, False),
        ("-w", "DEADLINE", args.deadline, False),
    ):
        if value is None:
            continue
        try:
            positive_seconds(value, allow_zero=zero)
        except ValueError as e:
            raise usage_error(f"{flag} {value}: {name} {e}") from None
    if args.interval < 0.002 and os.geteuid() != 0:
        raise usage_error(f"-i {args.interval}: intervals under 0.002 s need root")
    if not 0 <= args.size <= MAX_SIZE[6]:
        raise usage_error(f"-s {args.size}: SIZE must be 0 to 65507 (65527 for IPv6)")
    if args.ttl is not None and not 1 <= args.ttl <= 255:
        raise usage_error(f"-t {args.ttl}: TTL must be 1 to 255")
    if args.rate is not None and not args.rate >= 0:
        raise usage_error(f"--rate {args.rate}: N must be 0 or more")


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
            raise usage_error(
                f"-I {printable(args.source)}: neither a local address nor an interface"
            ) from None
        return None, args.source
    if args.version is not None and address.version != args.version:
        raise usage_error(f"-I {args.source}: not an IPv{args.version} address")
    return canonical(address), None


async def _resolve(reactor: Any, host: str, version: int | None, status: int = 1) -> str:
    """
    An address for HOST, through :mod:`netproto.lookup`: the literal itself,
    or the first; a failure exits *status* (iputils ping: 2), its JSON kind
    the lookup's.
    """
    from netproto.lookup import Lookup, NameLookupError
    from netproto.ping import expand_targets
    from netproto.util import AddressError, parse_ip

    try:
        given = parse_ip(host)
    except AddressError:
        given = None
    if given is not None and version is not None and given.version != version:
        raise usage_error(f"{host}: not an IPv{version} address")
    network = {4: "ip4", 6: "ip6"}.get(version or 0, "ip")
    try:
        address = await Lookup(reactor).resolve_ip(host, network)
    except NameLookupError as e:
        raise lookup_failure(e, status, host=host) from None
    return expand_targets([str(address).partition("%")[0]])[0]


def is_sweep(args: argparse.Namespace) -> bool:
    """Several hosts, a range, or a flag only sweeps have: fping's mode."""
    return (
        len(args.hosts) > 1
        or any("/" in h for h in args.hosts)
        or args.file is not None
        or args.generate
        or args.alive
        or args.unreachable
        or args.retries is not None
        or args.backoff is not None
        or args.any
    )


def sweep_request(args: argparse.Namespace, retries: int = 0, **fields: Any) -> SweepRequest:
    """
    The :class:`SweepRequest` of the sweep flags *args* share (*retries*
    when -r is not given), with *fields* on top.
    """
    if args.retries is not None and args.retries < 0:
        raise usage_error(f"-r {args.retries}: N must be 0 or more")
    if args.backoff is not None and not 1.0 <= args.backoff <= 5.0:
        raise usage_error(f"-B {args.backoff}: F must be 1 to 5")
    return SweepRequest(
        alive=args.alive,
        unreachable=args.unreachable,
        retries=retries if args.retries is None else args.retries,
        backoff=args.backoff if args.backoff is not None else 1.5,
        any=args.any,
        json=args.json,
        **fields,
    )


async def sweep_targets(
    reactor: Any, args: argparse.Namespace, request: SweepRequest
) -> tuple[list[str], list[tuple[str, Exception]]]:
    """The targets of a sweep: operands (or -g's range), then -f's file; names resolved."""
    texts = list(args.hosts)
    if args.generate:
        texts = generated(texts, args.version)
    if args.file is not None:
        texts.extend(read_target_file(args.file))
    if not texts:
        raise usage_error("no targets: give a HOST, -g RANGE or -f FILE")
    return await gather_targets(reactor, texts, args.version, request)


async def _run(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.ping import PingClient

    if not args.hosts and args.file is None:
        raise usage_error("give a HOST to ping (or several, or a range, to sweep)")
    sweep = is_sweep(args)
    if sweep:
        args.usage_status = SWEEP_USAGE
    _check(args)
    source, interface = _source(args)
    if sweep:
        request = sweep_request(
            args,
            count=args.count or 1,
            interval=args.interval,
            timeout=args.timeout if args.timeout is not None else 1.0,
            rate=args.rate if args.rate is not None else 100.0,
            size=args.size,
            quiet=args.quiet,
            deadline=args.deadline,
        )
        targets, failed = await sweep_targets(reactor, args, request)
    else:
        target = await _resolve(reactor, args.hosts[0], args.version, EXIT_USAGE)
        targets, failed = [target], []
    if args.size > MAX_SIZE[4] and any(":" not in t for t in targets):
        raise usage_error(f"-s {args.size}: SIZE must be 0 to 65507 for IPv4")
    client = PingClient(reactor, args.socket, ttl=args.ttl, source=source, interface=interface)
    try:
        open_sockets(client, targets, sweep, args.source)
        if sweep:
            return await run_sweep(reactor, client, targets, failed, request)
        return await run_one(reactor, client, args.hosts[0], targets[0], source, args)
    finally:
        client.close()


def open_sockets(client: Any, targets: list[str], sweep: bool, source: str | None) -> None:
    """
    Open the client's socket for each IP version of *targets* now, so that a
    missing privilege is one line: iputils' status 2 for one host, fping's 4
    for a sweep.
    """
    from netproto.ping import PingPermissionError
    from netproto.util import AddressError

    try:
        for version in sorted({6 if ":" in t else 4 for t in targets}):
            client.socket_for(version)
    except PingPermissionError as e:
        raise CommandError(str(e), SWEEP_SYSTEM if sweep else 2, kind="permission") from None
    except AddressError as e:
        raise usage_error(f"-I {source}: {e}") from None
    except OSError as e:
        raise CommandError(
            f"cannot set up the ICMP socket: {e.strerror or e}", SWEEP_SYSTEM if sweep else 2
        ) from None
