"""
``netproto traceroute HOST [PACKETLEN]``: traceroute(8)'s options and output,
one line per hop (``*`` for silence, ``!H`` and the other marks for
unreachable answers), or one JSON object per hop and a summary.
"""

from __future__ import annotations

import argparse
import errno
import socket
from typing import Any

from netproto.cli._command import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Subcommands,
    add_command,
    seconds,
    usage_error,
)
from netproto.cli._names import Names
from netproto.cli._output import CommandError, emit_json, ms, printable, say
from netproto.util import positive_seconds

__all__ = ["register"]

_DESCRIPTION = """\
Print the path to HOST, one hop a line, as traceroute(8) does: probes go out
with TTL (IPv6 hop limit) FIRST_TTL to MAX_TTL, -q at a time for each hop and
up to -N in flight in all; each router on the way answers "time exceeded",
the destination "port unreachable" or its service's reply (UDP), or an echo
reply (ICMP). A hop shows its responders and round-trip times, * for a probe
with no answer in time (-w), and a mark when a router reports the destination
unreachable: !N (network), !H (host), !P (protocol), !X (administratively
prohibited), !S, !V, !C, !F-MTU (fragmentation needed), !<CODE> (other
codes). The trace ends at the destination, at such a mark, or after MAX_TTL.

Probes: UDP to port 33434 and up, one port per probe (the default); -U, UDP
of one constant flow, to one port (53 by default; Paris traceroute: load
balancers keep every probe on the same path); -I, ICMP echo requests.

Answers are read from a raw ICMP socket with root or CAP_NET_RAW, else
without privilege: UDP from the socket's error queue (always allowed on
Linux), ICMP through a ping socket (net.ipv4.ping_group_range must include
your group). --socket forces one way. An answer counts only when what it
quotes is one of our probes: forged or foreign ICMP errors are never shown.

Without -n, each responder's name is looked up (the system resolver).

Exit status: 0 if the destination answered, 1 if it did not (out of hops, or
an unreachable mark) or on a failure such as an unknown host or no socket,
2 on usage errors, 130 when interrupted."""


def register(subcommands: Subcommands) -> None:
    """Add the traceroute command."""
    parser = add_command(
        subcommands,
        "traceroute",
        _run,
        help="print the path to a host (traceroute over UDP or ICMP)",
        description=_DESCRIPTION,
        tls=False,
    )
    family = parser.add_mutually_exclusive_group()
    family.add_argument("-4", dest="version", action="store_const", const=4, help="IPv4 only")
    family.add_argument("-6", dest="version", action="store_const", const=6, help="IPv6 only")
    method = parser.add_mutually_exclusive_group()
    method.add_argument(
        "-I", dest="method", action="store_const", const="icmp", help="ICMP echo probes"
    )
    method.add_argument(
        "-U",
        dest="method",
        action="store_const",
        const="paris",
        help="UDP probes of one constant flow to one port (Paris traceroute; port 53 unless -p)",
    )
    parser.set_defaults(method="udp")
    parser.add_argument(
        "-q", dest="probes", type=int, default=3, metavar="NQUERIES", help="probes per hop (3)"
    )
    parser.add_argument(
        "-f", dest="first_hop", type=int, default=1, metavar="FIRST_TTL", help="first TTL (1)"
    )
    parser.add_argument(
        "-m", dest="max_hops", type=int, default=30, metavar="MAX_TTL", help="last TTL (30)"
    )
    parser.add_argument(
        "-w",
        dest="wait",
        type=_wait,
        default=(5.0, 3.0, 10.0),
        metavar="MAX[,HERE,NEAR]",
        help="wait MAX seconds for an answer (5), less once HERE times the round trip of "
        "an answer from the same hop (3), or else NEAR times that of a later hop (10), "
        "has passed",
    )
    parser.add_argument(
        "-N",
        dest="simultaneous",
        type=int,
        default=16,
        metavar="SQUERIES",
        help="probes in flight at once (16)",
    )
    parser.add_argument(
        "-p",
        dest="port",
        type=int,
        metavar="PORT",
        help="UDP: first destination port (33434), or the one port of -U (53)",
    )
    parser.add_argument("-n", dest="numeric", action="store_true", help="print addresses only")
    parser.add_argument("-s", dest="source", metavar="SRC_ADDR", help="send from this address")
    parser.add_argument("-i", dest="interface", metavar="DEVICE", help="send through this device")
    parser.add_argument(
        "--socket",
        choices=("auto", "raw", "dgram"),
        default="auto",
        help="raw ICMP socket, unprivileged sockets, or auto (default)",
    )
    parser.add_argument("host", metavar="HOST", help="an address or a host name")
    parser.add_argument(
        "packetlen",
        nargs="?",
        type=int,
        metavar="PACKETLEN",
        help="bytes per probe, IP header included (60 for IPv4, 80 for IPv6)",
    )


def _wait(text: str) -> tuple[float, float, float]:
    """-w MAX[,HERE[,NEAR]] (commas or slashes), as traceroute(8) takes it."""
    parts = text.replace("/", ",").split(",")
    if len(parts) > 3:
        raise argparse.ArgumentTypeError(f"{text!r}: give MAX[,HERE[,NEAR]]")
    values = [5.0, 3.0, 10.0]
    values[0] = seconds(parts[0])
    for at, part in enumerate(parts[1:], start=1):
        try:
            values[at] = positive_seconds(part, allow_zero=True)
        except ValueError as e:
            name = ("HERE", "NEAR")[at - 1]
            raise argparse.ArgumentTypeError(f"{name} {e}") from None
    return values[0], values[1], values[2]


def _check(args: argparse.Namespace) -> None:
    """Refuse what traceroute(8) refuses, naming the option."""
    if not 1 <= args.probes <= 10:
        raise usage_error(f"-q {args.probes}: NQUERIES must be 1 to 10")
    if not 1 <= args.max_hops <= 255:
        raise usage_error(f"-m {args.max_hops}: MAX_TTL must be 1 to 255")
    if not 1 <= args.first_hop <= args.max_hops:
        raise usage_error(f"-f {args.first_hop}: FIRST_TTL must be 1 to MAX_TTL ({args.max_hops})")
    if not 1 <= args.simultaneous <= 1024:
        raise usage_error(f"-N {args.simultaneous}: SQUERIES must be 1 to 1024")
    if args.wait[0] > 3600:
        raise usage_error(f"-w {args.wait[0]:g}: MAX must be at most 3600 seconds")
    if args.port is not None:
        if args.method == "icmp":
            raise usage_error("-p: ICMP probes have no port")
        if not 1 <= args.port <= 65535:
            raise usage_error(f"-p {args.port}: PORT must be 1 to 65535")
        last = args.port + args.max_hops * args.probes - 1
        if args.method == "udp" and last > 65535:
            raise usage_error(
                f"-p {args.port}: {args.max_hops} hops of {args.probes} probes need ports "
                f"up to {last}; lower -p or -m"
            )
    if args.interface is not None:
        try:
            socket.if_nametoindex(args.interface)
        except OSError:
            raise usage_error(f"-i {printable(args.interface)}: no such device") from None


def _payload(args: argparse.Namespace, version: int) -> int:
    """The payload bytes of each probe: PACKETLEN less the IP and UDP/ICMP headers."""
    from netproto.traceroute import IP_HEADER

    if args.packetlen is None:
        return 32
    smallest = IP_HEADER[version] + 8
    if not smallest <= args.packetlen <= 65000:
        raise usage_error(f"{args.packetlen}: PACKETLEN must be {smallest} to 65000")
    return int(args.packetlen - smallest)


async def _hop_line(hop: Any, names: Names, numeric: bool) -> str:
    """traceroute(8)'s line for *hop*."""
    parts = [f"{hop.ttl:2d} "]
    previous = None
    for reply in hop.replies:
        if reply is None:
            parts.append(" *")
            continue
        if reply.address != previous:
            if numeric:
                parts.append(f" {reply.address}")
            else:
                name = await names.name(reply.address)
                parts.append(f" {printable(name or reply.address)} ({reply.address})")
            previous = reply.address
        parts.append(f"  {reply.rtt * 1000:.3f} ms")
        if reply.mark:
            parts.append(f" {reply.mark}")
    return "".join(parts)


async def _hop_record(hop: Any, names: Names) -> dict[str, Any]:
    responders = []
    for responder in hop.responders:
        name = await names.name(responder.address)
        responders.append(
            {
                "address": responder.address,
                "name": name,
                "rtts_ms": [ms(rtt) for rtt in responder.rtts],
            }
        )
    return {
        "ttl": hop.ttl,
        "probes": [
            None
            if r is None
            else {
                "address": r.address,
                "rtt_ms": ms(r.rtt),
                "mark": r.mark or None,
                "icmp_type": r.type if r.type >= 0 else None,
                "icmp_code": r.code if r.type >= 0 else None,
            }
            for r in hop.replies
        ],
        "responders": responders,
        "marks": list(hop.marks),
        "reached": hop.reached,
    }


def _summary_record(host: str, summary: Any, packet: int, interrupted: bool) -> dict[str, Any]:
    return {
        "summary": True,
        "host": host,
        "target": summary.target,
        "method": summary.method,
        "socket": summary.mode,
        "first_hop": summary.first_hop,
        "max_hops": summary.max_hops,
        "probes": summary.probes,
        "packet_bytes": packet,
        "hops": summary.hops[-1].ttl if summary.hops else None,
        "reached": summary.reached,
        "ignored": summary.ignored,
        "interrupted": interrupted,
        "time_ms": round(summary.elapsed * 1000.0, 3),
    }


def _start(reactor: Any, target: str, args: argparse.Namespace, names: Names) -> Any:
    """Open the sockets and start the trace; failures become one-line errors."""
    from netproto.traceroute import TracePermissionError, trace
    from netproto.util import AddressError

    version = 6 if ":" in target else 4
    try:
        return trace(
            reactor,
            target,
            method=args.method,
            mode=args.socket,
            probes=args.probes,
            first_hop=args.first_hop,
            max_hops=args.max_hops,
            wait=args.wait[0],
            here=args.wait[1],
            near=args.wait[2],
            simultaneous=args.simultaneous,
            size=_payload(args, version),
            port=args.port,
            source=args.source,
            interface=args.interface,
            on_hop=names.prefetch,
        )
    except TracePermissionError as e:
        raise CommandError(str(e)) from None
    except AddressError as e:
        raise usage_error(f"-s {printable(args.source or '')}: {e}") from None
    except ValueError as e:
        raise usage_error(str(e)) from None
    except OSError as e:
        if args.source is not None and e.errno == errno.EADDRNOTAVAIL:
            raise CommandError(f"-s {printable(args.source)}: not a local address") from None
        raise CommandError(f"cannot set up the sockets: {e.strerror or e}") from None


async def _run(reactor: Any, args: argparse.Namespace) -> int:
    from twisted.internet.defer import CancelledError

    from netproto.cli._ping import _resolve
    from netproto.traceroute import IP_HEADER, TraceError

    _check(args)
    target = await _resolve(reactor, args.host, args.version)
    version = 6 if ":" in target else 4
    names = Names(reactor, enabled=not args.numeric)
    running = _start(reactor, target, args, names)
    packet = IP_HEADER[version] + 8 + running.size
    shown = printable(args.host)
    if not args.json:
        say(f"traceroute to {shown} ({target}), {args.max_hops} hops max, {packet} byte packets")
    interrupted = False
    try:
        async for hop in running:
            if args.json:
                emit_json(await _hop_record(hop, names))
            else:
                say(await _hop_line(hop, names, args.numeric))
        summary = await running.done
    except CancelledError:
        interrupted = True
        running.stop()
        summary = running.summary()
    except TraceError as e:
        raise CommandError(printable(str(e))) from None
    if args.json:
        emit_json(_summary_record(args.host, summary, packet, interrupted))
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.reached else EXIT_FAILED
