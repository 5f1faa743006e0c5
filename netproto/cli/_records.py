"""
``netproto lookup-mx``, ``lookup-txt``, ``lookup-srv``, ``lookup-ns`` and
``lookup-soa``: Go's LookupMX, LookupTXT, LookupSRV and LookupNS (and SOA),
over :mod:`twisted.names`, printed as ``dig +short`` prints them, with the
lookups' exit statuses (getent's).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from netproto.cli._command import EXIT_OK, Subcommands, add_command, usage_error
from netproto.cli._lookup import LOOKUP_EXITS, USAGE_STATUS, lookup_failure, server_options
from netproto.cli._output import emit_json, printable, say

__all__ = ["register"]

_SOURCES = (
    "The question goes to the DNS servers of --server, or else to those of "
    "/etc/resolv.conf\n(the system resolver has no call for these records; no "
    "hosts file is read). A CNAME\nchain inside the answer is followed. One record "
    "a line, as 'dig +short' prints it."
)

_COMMANDS = (
    ("mx", "MX", "the mail exchangers of a domain", "PREF HOST, lowest preference first"),
    ("txt", "TXT", "the TXT records of a name", '"STRING" ..., each string quoted as dig does'),
    ("srv", "SRV", "the SRV records of a service", "PRIORITY WEIGHT PORT TARGET (RFC 2782 order)"),
    ("ns", "NS", "the name servers of a zone", "HOST"),
    ("soa", "SOA", "the start of authority of a zone", "MNAME RNAME SERIAL REFRESH RETRY ..."),
)


def register(subcommands: Subcommands) -> None:
    """Add the record lookup commands."""
    for name, kind, summary, form in _COMMANDS:
        parser = add_command(
            subcommands,
            f"lookup-{name}",
            _run,
            help=f"list {summary} ({kind} records)",
            description=f"Print {summary}, one {kind} record a line: {form}.\n\n" + _SOURCES,
            exits=LOOKUP_EXITS,
            usage_status=USAGE_STATUS,
        )
        parser.set_defaults(record_type=kind)
        if kind == "SRV":
            parser.add_argument(
                "names",
                nargs="+",
                metavar="[SERVICE PROTO] NAME",
                help="SERVICE PROTO NAME asks for _SERVICE._PROTO.NAME (Go's LookupSRV: "
                "'xmpp-server tcp example.org'); NAME alone asks for NAME itself",
            )
        else:
            parser.add_argument("name", metavar="NAME", help="a domain name")
        server_options(parser, hosts=False)


def _record_json(record: Any) -> Any:
    if isinstance(record, tuple):  # TXT: its character strings
        text = b"".join(record).decode("utf-8", "backslashreplace")
        return {
            "text": text,
            "strings": [part.decode("utf-8", "backslashreplace") for part in record],
        }
    return asdict(record)


async def _run(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.lookup import Lookup, NameLookupError, record_text

    kind = args.record_type
    if kind == "SRV":
        if len(args.names) not in (1, 3):
            raise usage_error("give SERVICE PROTO NAME, or NAME alone")
        service, proto, name = ("", "", *args.names) if len(args.names) == 1 else args.names
    else:
        service = proto = ""
        name = args.name
    try:
        lookup = Lookup(reactor, servers=args.server, timeout=args.timeout)
    except NameLookupError as e:
        raise usage_error(printable(str(e))) from None
    asked = name
    try:
        if kind == "MX":
            records: list[Any] = list(await lookup.lookup_mx(name))
        elif kind == "TXT":
            records = list(await lookup.lookup_txt_strings(name))
        elif kind == "SRV":
            full, found = await lookup.lookup_srv(service, proto, name)
            asked, records = full.rstrip("."), list(found)
        elif kind == "NS":
            records = list(await lookup.lookup_ns(name))
        else:
            records = [await lookup.lookup_soa(name)]
    except NameLookupError as e:
        raise lookup_failure(e, name=asked, type=kind) from None
    if args.json:
        emit_json(
            {
                "name": asked,
                "type": kind,
                "records": [_record_json(r) for r in records],
                "source": "dns",
            }
        )
    else:
        for record in records:
            say(printable(record_text(record)))
    return EXIT_OK
