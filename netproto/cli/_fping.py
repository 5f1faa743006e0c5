"""
``netproto fping``: a sweep with fping's own flags, defaults, output and exit
statuses, so that a script written for fping runs with ``netproto fping`` in
its place. The sweep itself is ``netproto ping``'s (:mod:`._ping_sweep`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from netproto.cli._command import ExitTable, Subcommands, add_command, usage_error
from netproto.cli._ping import MAX_SIZE, add_sweep_arguments, ping_or_sweep, sweep_defaults
from netproto.cli._ping_sweep import SWEEP_USAGE

_DESCRIPTION = """\
Ping many hosts as fping does, with fping's flags: one line per target
('HOST is alive', 'HOST is unreachable'), -a and -u for bare lists, -q for
none, -s for fping's statistics on standard error, -c N for N probes per
target (fping's per-target statistics lines on standard error). Times are
in milliseconds (-t, -i, -p), as fping's. Targets are operands, -g RANGE,
-f FILE, or standard input when there are none.

fping's long options (--alive, --quiet, --retry...) work too.
Not fping's: per-probe lines with -c (only the statistics lines), -C, -l,
-D, -o and friends; --json prints one object per target, then a summary."""

FPING_EXITS: ExitTable = (
    ("0", "every target answered (with --any: at least one)"),
    ("1", "some target did not answer"),
    ("2", "a host name was not found"),
    ("3", "invalid arguments (usage error)"),
    ("4", "a system call failed (no ICMP socket)"),
    ("130", "interrupted before any verdict"),
)
"""fping's exit statuses."""


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}") from None
    if not 0 <= value <= 3_600_000:
        raise argparse.ArgumentTypeError(f"{text} ms is out of range (0 to 3600000)")
    return value


def register(subcommands: Subcommands) -> None:
    """Add the fping command."""
    parser = add_command(
        subcommands,
        "fping",
        _run,
        help="ping many hosts with fping's flags, output and exit statuses",
        description=_DESCRIPTION,
        exits=FPING_EXITS,
        usage_status=SWEEP_USAGE,
        tls=False,
    )
    add_sweep_arguments(parser, retries=3)
    parser.add_argument(
        "-q", "--quiet", dest="quiet", action="store_true", help="no per-target lines"
    )
    parser.add_argument(
        "-s",
        "--stats",
        dest="statistics",
        action="store_true",
        help="fping's statistics at the end",
    )
    parser.add_argument(
        "-e",
        "--elapsed",
        dest="elapsed",
        action="store_true",
        help="show the round trip of alive targets",
    )
    parser.add_argument(
        "-A",
        "--addr",
        dest="addresses",
        action="store_true",
        help="show targets by address, not name",
    )
    parser.add_argument(
        "-c", "--count", dest="count", type=int, metavar="N", help="N probes per target"
    )
    parser.add_argument(
        "-t",
        "--timeout",
        dest="timeout",
        type=_milliseconds,
        default=500.0,
        metavar="MS",
        help="wait for a reply (default 500; each retry -B times longer)",
    )
    parser.add_argument(
        "-i",
        "--interval",
        dest="interval",
        type=_milliseconds,
        default=10.0,
        metavar="MS",
        help="between probes, to any target (default 10)",
    )
    parser.add_argument(
        "-p",
        "--period",
        dest="period",
        type=_milliseconds,
        default=1000.0,
        metavar="MS",
        help="between probes to one target, with -c (default 1000)",
    )
    parser.add_argument(
        "-b",
        "--size",
        dest="size",
        type=int,
        default=56,
        metavar="BYTES",
        help="payload bytes (56)",
    )
    parser.add_argument("-H", "--ttl", dest="ttl", type=int, metavar="TTL", help="IP time to live")
    parser.add_argument("-S", "--src", dest="source", metavar="ADDR", help="send from this address")
    parser.add_argument(
        "-I", "--iface", dest="interface", metavar="IFACE", help="send on this interface"
    )
    family = parser.add_mutually_exclusive_group()
    family.add_argument(
        "-4", "--ipv4", dest="version", action="store_const", const=4, help="IPv4 only"
    )
    family.add_argument(
        "-6", "--ipv6", dest="version", action="store_const", const=6, help="IPv6 only"
    )
    parser.add_argument(
        "--socket",
        choices=("auto", "raw", "dgram"),
        default="auto",
        help="raw socket, unprivileged ping socket, or auto (default)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="netproto's own: run the sweep as N shard processes, their output merged",
    )
    parser.add_argument("hosts", nargs="*", metavar="TARGET", help="an address, name or range")


def _check(args: argparse.Namespace) -> None:
    if args.count is not None and args.count < 1:
        raise usage_error(f"-c {args.count}: N must be at least 1")
    if not 0 <= args.size <= MAX_SIZE[6]:
        raise usage_error(f"-b {args.size}: BYTES must be 0 to 65507 (65527 for IPv6)")
    if args.ttl is not None and not 1 <= args.ttl <= 255:
        raise usage_error(f"-H {args.ttl}: TTL must be 1 to 255")
    if args.timeout <= 0:
        raise usage_error(f"-t {args.timeout:g}: MS must be more than 0")
    if args.period <= 0:
        raise usage_error(f"-p {args.period:g}: MS must be more than 0")
    if args.retries < 0:
        raise usage_error(f"-r {args.retries}: N must be 0 or more")
    if not 1.0 <= args.backoff <= 5.0:
        raise usage_error(f"-B {args.backoff:g}: F must be 1 to 5")
    if args.processes is not None and not 1 <= args.processes <= 256:
        raise usage_error(f"--processes {args.processes}: N must be 1 to 256")


async def _run(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.util import AddressError, canonical, parse_ip

    _check(args)
    if not args.hosts and args.file is None and not args.generate:
        if sys.stdin.isatty():
            raise usage_error("no targets: give them as operands, -g RANGE, -f FILE or on stdin")
        args.file = "-"
    source = None
    if args.source is not None:
        try:
            source = canonical(parse_ip(args.source))
        except AddressError:
            raise usage_error(f"-S {args.source}: not an address") from None
    # fping's flags as the sweep of netproto ping reads them.
    args.style = "fping"
    sweep_defaults(args)
    milliseconds = {"timeout": args.timeout, "period": args.period, "interval": args.interval}
    args.timeout = milliseconds["timeout"] / 1000.0
    args.interval = milliseconds["period"] / 1000.0
    args.rate = 1000.0 / milliseconds["interval"] if milliseconds["interval"] else 0.0
    if (args.count or 1) > 1:
        args.retries = 0  # fping retries only one probe per target
    for name, value in (
        ("deadline", None),
        ("seed", None),
        ("shard", (0, 1)),
        ("resume", None),
        ("exclude", []),
        ("exclude_file", []),
    ):
        setattr(args, name, value)
    return await ping_or_sweep(reactor, args, True, source, args.interface)
