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
from netproto.cli._ping_shards import run_shards
from netproto.cli._ping_sweep import SWEEP_SYSTEM, SWEEP_USAGE, run_sweep
from netproto.util import positive_seconds

_DESCRIPTION = """\
Send ICMP echo requests (IPv4 and IPv6).

With one HOST, behave like ping(8): one line per reply (DUP! for duplicates,
ICMP errors such as Destination Host Unreachable), the statistics block at
the end or on Ctrl-C. Without -c or -w, ping until interrupted.

With several HOSTs, a range (127.0.0.0/24, 127.0.0.1-127.0.0.9), -g or -f,
sweep like fping: one line per target on standard output, alive or
unreachable, as it is decided, then a summary line on standard error (-q:
neither; -a, -u: bare lists of the alive, the unreachable). A sweep sends
one probe per target (-c for more) at --rate probes a second (default 100,
fping's 10 ms interval; 0: as fast as the machine allows), waits -W seconds
(default 1) for each, and tries the unanswered -r more times, each wait -B
times the one before. A name that cannot be resolved is reported and the
sweep goes on (exit 2). For fping's own flags (-t ms, -i ms, -b, -s
statistics), use netproto fping.

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
        tls=False,
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
    add_sweep_arguments(parser, retries=0)
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="sweep: the number that picks the probing order (default: random); shards need one",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="RANGE",
        help="sweep: never probe this address, CIDR or FIRST-LAST range (repeatable)",
    )
    parser.add_argument(
        "--exclude-file",
        action="append",
        default=[],
        metavar="FILE",
        help="sweep: never probe the ranges of FILE, one a line, # comments (repeatable)",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="K/N",
        help="sweep: probe only part K of N of the order (1 <= K <= N); needs --seed",
    )
    parser.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="sweep: run N shards as processes on this machine, their output merged",
    )
    parser.add_argument(
        "--resume",
        metavar="FILE",
        help="sweep: keep the sweep's state in FILE; if it exists, continue from it",
    )
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


def add_sweep_arguments(parser: argparse.ArgumentParser, *, retries: int) -> None:
    """The flags fping and ping's sweeps share: -a -u -f -g -r -B --any (and fping's long forms)."""
    parser.add_argument(
        "-a",
        "--alive",
        dest="alive_only",
        action="store_true",
        help="sweep: show only the alive targets, one address a line (fping -a)",
    )
    parser.add_argument(
        "-u",
        "--unreach",
        dest="unreachable_only",
        action="store_true",
        help="sweep: show only the unreachable targets, one address a line (fping -u)",
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
        metavar="RETRIES",
        default=retries,
        help=f"sweep: probe targets that did not answer again, up to RETRIES times "
        f"(default {retries})",
    )
    parser.add_argument(
        "-B",
        "--backoff",
        dest="backoff",
        type=float,
        metavar="F",
        default=1.5,
        help="sweep: each retry waits F times longer than the try before (default 1.5)",
    )
    parser.add_argument(
        "--any",
        action="store_true",
        help="sweep: exit 0 when at least one target answered (fping: only when all did)",
    )


def _shard(text: str) -> tuple[int, int]:
    """--shard K/N: the 0-based part and the number of parts."""
    k, slash, n = text.partition("/")
    try:
        part, parts = int(k), int(n)
    except ValueError:
        part = parts = 0
    if not slash or not 1 <= part <= parts:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N with 1 <= K <= N")
    return part - 1, parts


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
    if args.retries < 0:
        raise usage_error(f"-r {args.retries}: RETRIES must be 0 or more")
    if not 1.0 <= args.backoff <= 5.0:
        raise usage_error(f"-B {args.backoff:g}: F must be 1 to 5")
    if args.retries and (args.count or 1) > 1:
        raise usage_error("-r: retries apply to one probe per target (not with -c)")
    if args.shard[1] > 1 and args.seed is None:
        raise usage_error("--shard: give every shard the same --seed")
    if args.processes is not None:
        if not 1 <= args.processes <= 256:
            raise usage_error(f"--processes {args.processes}: N must be 1 to 256")
        if args.shard[1] > 1:
            raise usage_error("--processes: not with --shard (it makes the shards)")


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


def _is_range(host: str) -> bool:
    """Whether *host* is a CIDR or FIRST-LAST range (a sweep), not a host."""
    if "/" in host:
        return True
    first, dash, last = host.partition("-")
    if not dash:
        return False
    from netproto.util import AddressError, parse_ip

    try:
        parse_ip(first.strip())
        parse_ip(last.strip())
    except AddressError:
        return False
    return True


async def _space(reactor: Any, args: argparse.Namespace) -> Any:
    """
    The sweep's targets: ranges as given (-g START END: the range between),
    -f's file, names resolved (once, up front; one that fails is set aside in
    ``args.failed`` and the sweep goes on), exclusions out.
    """
    from netproto.lookup import Lookup, NameLookupError
    from netproto.ping import MAX_PROBES, TargetSpace, read_exclude_file
    from netproto.util import AddressError, parse_ip

    given = list(args.hosts)
    if args.generate:
        if len(given) == 2 and not any(_is_range(h) for h in given):
            given = [f"{given[0]}-{given[1]}"]
        elif len(given) != 1 or not _is_range(given[0]):
            raise usage_error("-g takes one CIDR range, or a START and an END address")
    if args.file is not None:
        given += read_target_file(args.file)
    if not given:
        raise usage_error("no targets: give a HOST, -g RANGE or -f FILE")
    texts = []
    lookup = None
    network = {4: "ip4", 6: "ip6"}.get(args.version or 0, "ip")
    by_address = getattr(args, "addresses", False)  # fping -A
    for host in given:
        literal = _is_range(host)
        if not literal:
            try:
                parse_ip(host)
                literal = True
            except AddressError:
                pass
        if literal:
            if not _is_range(host):
                shown = canonical_target(host)
                args.labels.setdefault(shown, []).append(shown if by_address else host)
            texts.append(host)
            continue
        lookup = lookup or Lookup(reactor)
        try:
            resolved = await lookup.resolve_ip(host, network)
        except NameLookupError as e:
            args.failed.append((host, e))
            continue
        found = canonical_target(str(resolved).partition("%")[0])
        args.labels.setdefault(found, []).append(found if by_address else host)
        texts.append(found)
    exclude = list(args.exclude)
    try:
        for path in args.exclude_file:
            exclude += read_exclude_file(path)
    except AddressError as e:
        raise usage_error(f"--exclude-file {e}") from None
    try:
        TargetSpace(exclude)
    except AddressError as e:
        raise usage_error(f"--exclude: {e}") from None
    try:
        space = TargetSpace(texts, args.version, exclude)
    except AddressError as e:
        raise usage_error(printable(str(e))) from None
    if len(space) * (args.count or 1) > MAX_PROBES:
        raise usage_error(f"{len(space)} targets: more than a sweep takes ({MAX_PROBES})")
    return space


def canonical_target(text: str) -> str:
    """An address as the sweep reports it (the form sockets give sources in)."""
    from netproto.ping import expand_targets

    return expand_targets([text])[0]


def read_target_file(path: str) -> list[str]:
    """
    Targets from *path* (``-`` for standard input), as fping reads them: the
    first word of each line; blank lines and ``#`` comments skipped.
    """
    import sys

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
    except OSError as e:
        raise usage_error(f"-f {printable(path)}: {e.strerror or e}") from None
    return [words[0] for line in text.splitlines() if (words := line.partition("#")[0].split())]


def is_sweep(args: argparse.Namespace) -> bool:
    """Several hosts, a range, or a flag only sweeps have: fping's mode."""
    return bool(
        len(args.hosts) > 1
        or any(_is_range(h) for h in args.hosts)
        or args.exclude
        or args.exclude_file
        or args.shard[1] > 1
        or args.processes is not None
        or args.resume is not None
        or args.file is not None
        or args.generate
        or args.alive_only
        or args.unreachable_only
        or args.retries
        or args.any
    )


async def _run(reactor: Any, args: argparse.Namespace) -> int:
    if not args.hosts and args.file is None:
        raise usage_error("give a HOST to ping (or several, or a range, to sweep)")
    sweep = is_sweep(args)
    if sweep:
        # fping's statuses: 3 for usage errors, 4 for a system call that failed.
        args.usage_status = SWEEP_USAGE
        sweep_defaults(args)
    _check(args)
    source, interface = _source(args)
    return await ping_or_sweep(reactor, args, sweep, source, interface)


def sweep_defaults(args: argparse.Namespace) -> None:
    """What a sweep reads that only some commands set (netproto fping sets its own)."""
    for name, value in (("style", "netproto"), ("statistics", False), ("elapsed", False)):
        if not hasattr(args, name):
            setattr(args, name, value)
    args.labels = {}
    args.failed = []


async def ping_or_sweep(
    reactor: Any, args: argparse.Namespace, sweep: bool, source: str | None, interface: str | None
) -> int:
    """Ping one host, or sweep (``netproto fping`` comes in here too)."""
    from netproto.ping import PROOF_SIZE, PingClient, PingPermissionError
    from netproto.util import AddressError

    if sweep:
        space = await _space(reactor, args)
        versions = space.versions
        if args.size < PROOF_SIZE:
            raise usage_error(f"-s {args.size}: a sweep's probes need at least {PROOF_SIZE} bytes")
        if args.processes is not None:
            return await run_shards(reactor, space, args)
    else:
        target = await _resolve(reactor, args.hosts[0], args.version, EXIT_USAGE)
        versions = {6 if ":" in target else 4}
    if args.size > MAX_SIZE[4] and 4 in versions:
        raise usage_error(f"-s {args.size}: SIZE must be 0 to 65507 for IPv4")
    client = PingClient(reactor, args.socket, ttl=args.ttl, source=source, interface=interface)
    try:
        try:
            for version in sorted(versions):
                client.socket_for(version)
        except PingPermissionError as e:
            # iputils exits 2 for one host (the sweep's status is its own).
            raise CommandError(str(e), SWEEP_SYSTEM if sweep else 2, kind="permission") from None
        except AddressError as e:
            raise usage_error(f"-I {args.source}: {e}") from None
        except OSError as e:
            raise CommandError(
                f"cannot set up the ICMP socket: {e.strerror or e}", SWEEP_SYSTEM if sweep else 2
            ) from None
        if sweep:
            return await run_sweep(reactor, client, space, args)
        return await run_one(reactor, client, args.hosts[0], target, source, args)
    finally:
        client.close()
