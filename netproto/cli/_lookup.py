"""
``netproto resolve``, ``lookup-host``, ``lookup-cname`` and ``lookup-port``:
Go's ResolveIPAddr, LookupHost, LookupPort and LookupCNAME.
"""

from __future__ import annotations

import argparse
from typing import Any

from netproto.cli._command import EXIT_OK, Subcommands, add_command
from netproto.cli._output import emit_json, failed, printable
from netproto.util import positive_seconds

_SOURCES = (
    "Without --server or --hosts, names are looked up by the system (getaddrinfo: "
    "nsswitch.conf,\n/etc/hosts, resolv.conf). With --hosts FILE, a name in FILE is "
    "answered from FILE alone;\nany other goes to the DNS servers of --server, or else "
    "of /etc/resolv.conf. With --server\nand no --hosts, no hosts file is read. IP "
    "addresses are answered without any query."
)


def register(subcommands: Subcommands) -> None:
    """Add the lookup commands."""
    resolve = add_command(
        subcommands,
        "resolve",
        _run_resolve,
        help="resolve a host name to one IP address",
        description="Print one address of HOST for the network (Go's ResolveIPAddr): "
        "ip (default)\nthe first IPv4 address, else the first IPv6 one; ip4 IPv4 only; "
        "ip6 IPv6 only.\n\n" + _SOURCES + "\n\nExit status 1 if HOST has no such address.",
    )
    resolve.add_argument(
        "--net",
        choices=("ip", "ip4", "ip6"),
        default="ip",
        help="address family to look up (default: ip, both)",
    )
    _name_options(resolve)

    host = add_command(
        subcommands,
        "lookup-host",
        _run_lookup_host,
        help="list all IP addresses of a host",
        description="Print every address of HOST, one a line: IPv4 first, then IPv6, each "
        "in the order\nits source gave, without duplicates.\n\n" + _SOURCES,
    )
    _name_options(host)

    cname = add_command(
        subcommands,
        "lookup-cname",
        _run_lookup_cname,
        help="print the canonical name of a host",
        description="Print the canonical name of HOST, fully qualified: the end of its "
        "CNAME chain\n(at most 10 records), or the name itself when it has none. From a "
        "hosts file: the\nfirst name of the line that lists HOST.\n\n" + _SOURCES,
    )
    _name_options(cname)

    port = add_command(
        subcommands,
        "lookup-port",
        _run_lookup_port,
        help="look up the port of a service",
        description="Print the port of SERVICE for NETWORK from the services database "
        "(/etc/services):\n'tcp telnet' is 23, 'udp domain' is 53. A number passes "
        "through after a range check.",
    )
    port.add_argument(
        "network",
        choices=("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"),
        metavar="NETWORK",
        help="tcp, tcp4, tcp6, udp, udp4 or udp6",
    )
    port.add_argument("service", metavar="SERVICE", help="a service name or a port number")
    _timeout_option(port)


def _timeout(text: str) -> float:
    try:
        return positive_seconds(text, maximum=3600)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _server(text: str) -> tuple[str, int]:
    from netproto.lookup import InvalidLookupError, parse_server

    try:
        return parse_server(text)
    except InvalidLookupError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=5.0,
        metavar="S",
        help="give up after S seconds, all queries included (default: 5)",
    )


def _name_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", metavar="HOST", help="a host name or an IP address")
    parser.add_argument(
        "--server",
        action="append",
        type=_server,
        default=[],
        metavar="ADDR[:PORT]",
        help="ask this DNS server (port 53 by default; IPv6 as [::1]:5353); repeat to "
        "add servers, asked in order",
    )
    parser.add_argument(
        "--hosts",
        metavar="FILE",
        help="read this hosts file first (default: the system's, through the system "
        "resolver, unless --server is given)",
    )
    _timeout_option(parser)


def _lookup(reactor: Any, args: argparse.Namespace) -> Any:
    from netproto.lookup import Lookup, NameLookupError

    try:
        return Lookup(reactor, servers=args.server, hosts=args.hosts, timeout=args.timeout)
    except NameLookupError as e:
        raise failed(e) from None


async def _run_resolve(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.lookup import NameLookupError
    from netproto.util import canonical

    lookup = _lookup(reactor, args)
    try:
        answer = await lookup.lookup(args.host, args.net)
        address = answer.pick(args.net)
    except NameLookupError as e:
        raise failed(e) from None
    text = canonical(address)
    if args.json:
        emit_json(
            {
                "host": args.host,
                "network": args.net,
                "address": text,
                "version": address.version,
                "zone": getattr(address, "scope_id", None),
                "source": answer.source,
            }
        )
    else:
        print(text)
    return EXIT_OK


async def _run_lookup_host(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.lookup import NameLookupError
    from netproto.util import canonical

    lookup = _lookup(reactor, args)
    try:
        answer = await lookup.lookup(args.host, "ip")
        if not answer.addresses:
            raise answer.no_address()
    except NameLookupError as e:
        raise failed(e) from None
    addresses = [canonical(a) for a in answer.addresses]
    if args.json:
        emit_json({"host": args.host, "addresses": addresses, "source": answer.source})
    else:
        for text in addresses:
            print(text)
    return EXIT_OK


async def _run_lookup_cname(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.lookup import NameLookupError

    lookup = _lookup(reactor, args)
    try:
        name = await lookup.lookup_cname(args.host)
    except NameLookupError as e:
        raise failed(e) from None
    if args.json:
        if lookup.hosts is not None and args.host in lookup.hosts:
            source = "hosts"
        else:
            source = "dns" if lookup.uses_dns else "system"
        emit_json({"host": args.host, "cname": name, "source": source})
    else:
        print(printable(name))
    return EXIT_OK


async def _run_lookup_port(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.lookup import NameLookupError, lookup_port

    try:
        port = await lookup_port(args.network, args.service, reactor=reactor, timeout=args.timeout)
    except NameLookupError as e:
        raise failed(e) from None
    if args.json:
        emit_json({"network": args.network, "service": args.service, "port": port})
    else:
        print(port)
    return EXIT_OK
