"""
``netproto resolve``, ``lookup-host``, ``lookup-cname``, ``lookup-addr`` and
``lookup-port``: Go's ResolveIPAddr, LookupHost, LookupCNAME, LookupAddr and
LookupPort (and its reverse, the service on a port), with getent's exit
statuses, which the record commands (``_records``) share.
"""

from __future__ import annotations

import argparse
from typing import Any

from netproto.cli._command import EXIT_OK, ExitTable, Subcommands, add_command, usage_error
from netproto.cli._output import CommandError, emit_json, printable
from netproto.util import positive_seconds

__all__ = ["LOOKUP_EXITS", "USAGE_STATUS", "lookup_failure", "register", "server_options"]

USAGE_STATUS = 1
"""getent's status for a usage error (missing arguments, unknown database)."""

NOT_FOUND = 2
FAILED = 3

LOOKUP_EXITS: ExitTable = (
    ("0", "found"),
    ("1", "usage error: unknown option, missing or malformed argument (as getent)"),
    (
        "2",
        "not found: no such name, no address of that family, no record of that type, "
        "no name for the address, unknown service (as getent); or not a name at all",
    ),
    (
        "3",
        "no answer: timeout, the server refused or failed, a CNAME loop (getent says 2; "
        "--json's error kind tells which)",
    ),
    ("130", "interrupted (Ctrl-C)"),
)
"""The exit statuses of every lookup command: getent's, and 3 for "could not find out"."""

_SOURCES = (
    "Without --server or --hosts, names are looked up by the system (getaddrinfo: "
    "nsswitch.conf,\n/etc/hosts, resolv.conf). With --hosts FILE, a name in FILE is "
    "answered from FILE alone;\nany other goes to the DNS servers of --server, or else "
    "of /etc/resolv.conf. With --server\nand no --hosts, no hosts file is read. IP "
    "addresses are answered without any query."
)


_EXITS: dict[str, Any] = {"exits": LOOKUP_EXITS, "usage_status": USAGE_STATUS}


def register(subcommands: Subcommands) -> None:
    """Add the lookup commands."""
    resolve = add_command(
        subcommands,
        "resolve",
        _run_resolve,
        help="resolve a host name to one IP address",
        description="Print one address of HOST for the network (Go's ResolveIPAddr): "
        "ip (default)\nthe first IPv4 address, else the first IPv6 one; ip4 IPv4 only; "
        "ip6 IPv6 only.\n\n" + _SOURCES,
        **_EXITS,
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
        **_EXITS,
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
        **_EXITS,
    )
    _name_options(cname)

    addr = add_command(
        subcommands,
        "lookup-addr",
        _run_lookup_addr,
        help="list the names of an IP address (reverse lookup, PTR)",
        description="Print every name of ADDR, fully qualified, one a line (Go's LookupAddr; "
        "'dig +short -x'):\nfrom a hosts file that lists it (every name of its lines, the "
        "canonical one first),\nelse the PTR records of its reverse name (in-addr.arpa, "
        "ip6.arpa) from the DNS\nservers, else the one name the system's getnameinfo "
        "finds.\n\n" + _SOURCES,
        **_EXITS,
    )
    addr.add_argument("address", metavar="ADDR", help="an IPv4 or IPv6 address")
    server_options(addr, hosts=True)

    port = add_command(
        subcommands,
        "lookup-port",
        _run_lookup_port,
        help="look up the port of a service, or the service on a port",
        description="Print the port of SERVICE for NETWORK from the services database "
        "(/etc/services):\n'tcp telnet' is 23, 'udp domain' is 53 (Go's LookupPort). Given "
        "a port number, print\nthe name of its service instead, as 'getent services 23/tcp' "
        "finds it: 'tcp 23' is\ntelnet. --json gives both.",
        **_EXITS,
    )
    port.add_argument(
        "network",
        choices=("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"),
        metavar="NETWORK",
        help="tcp, tcp4, tcp6, udp, udp4 or udp6",
    )
    port.add_argument("service", metavar="SERVICE|PORT", help="a service name or a port number")
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
    server_options(parser, hosts=True)


def server_options(parser: argparse.ArgumentParser, *, hosts: bool) -> None:
    """--server (and --hosts if *hosts*) and --timeout, as every name lookup takes them."""
    parser.add_argument(
        "--server",
        action="append",
        type=_server,
        default=[],
        metavar="ADDR[:PORT]",
        help="ask this DNS server (port 53 by default; IPv6 as [::1]:5353); repeat to "
        "add servers, asked in order",
    )
    if hosts:
        parser.add_argument(
            "--hosts",
            metavar="FILE",
            help="read this hosts file first (default: the system's, through the system "
            "resolver, unless --server is given)",
        )
    _timeout_option(parser)


def lookup_failure(error: Exception, status: int | None = None, **context: Any) -> CommandError:
    """
    The :class:`CommandError` of a failed lookup, with getent's exit status
    (or *status*, for the commands that resolve a host first) and the JSON
    error kind of its class; *context* goes into the JSON object.
    """
    from netproto.lookup import (
        CNAMELoopError,
        InvalidLookupError,
        LookupRefusedError,
        LookupTimeoutError,
        NameNotFoundError,
    )

    exit, kind = FAILED, "server-failure"
    if isinstance(error, InvalidLookupError):
        exit, kind = NOT_FOUND, "invalid"
    elif isinstance(error, NameNotFoundError):
        exit, kind = NOT_FOUND, "not-found"
    elif isinstance(error, LookupTimeoutError):
        kind = "timeout"
    elif isinstance(error, LookupRefusedError):
        kind = "refused"
    elif isinstance(error, CNAMELoopError):
        kind = "protocol"
    exit = exit if status is None else status
    return CommandError(printable(str(error)), exit, kind=kind, context=context)


def _lookup(reactor: Any, args: argparse.Namespace) -> Any:
    from netproto.lookup import Lookup, NameLookupError

    try:
        return Lookup(
            reactor, servers=args.server, hosts=getattr(args, "hosts", None), timeout=args.timeout
        )
    except NameLookupError as e:
        raise usage_error(printable(str(e))) from None


async def _run_resolve(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.lookup import NameLookupError
    from netproto.util import canonical

    lookup = _lookup(reactor, args)
    try:
        answer = await lookup.lookup(args.host, args.net)
        address = answer.pick(args.net)
    except NameLookupError as e:
        raise lookup_failure(e, host=args.host, network=args.net) from None
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
        raise lookup_failure(e, host=args.host) from None
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
        raise lookup_failure(e, host=args.host) from None
    if args.json:
        in_file = lookup.hosts is not None and args.host in lookup.hosts
        emit_json({"host": args.host, "cname": name, "source": _source(lookup, in_file)})
    else:
        print(printable(name))
    return EXIT_OK


async def _run_lookup_addr(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.lookup import NameLookupError

    lookup = _lookup(reactor, args)
    try:
        names = await lookup.lookup_addr(args.address)
    except NameLookupError as e:
        raise lookup_failure(e, address=args.address) from None
    if args.json:
        in_file = lookup.hosts is not None and bool(lookup.hosts.names(_parsed(args.address)))
        emit_json({"address": args.address, "names": names, "source": _source(lookup, in_file)})
    else:
        for name in names:
            print(printable(name))
    return EXIT_OK


def _source(lookup: Any, in_file: bool) -> str:
    """Where an answer came from: ``hosts`` when the file listed it, else DNS or the system."""
    if in_file:
        return "hosts"
    return "dns" if lookup.uses_dns else "system"


def _parsed(address: str) -> Any:
    from netproto.util import parse_ip

    return parse_ip(address, allow_scope=True)


async def _run_lookup_port(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.lookup import Lookup, NameLookupError

    lookup = Lookup(reactor, timeout=args.timeout)
    reverse = args.service.isascii() and args.service.isdigit()
    try:
        if reverse:
            port = int(args.service)
            service = await lookup.lookup_service(args.network, args.service)
        else:
            service = args.service
            port = await lookup.lookup_port(args.network, args.service)
    except NameLookupError as e:
        raise lookup_failure(e, network=args.network, service=args.service) from None
    if args.json:
        emit_json({"network": args.network, "service": service, "port": port})
    else:
        print(printable(service) if reverse else port)
    return EXIT_OK
