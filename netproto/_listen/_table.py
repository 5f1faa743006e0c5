"""
The table of services the twistd plugin serves: one row per service, naming
its option, its help, its TCP factory and its UDP datagram protocol. Adding a
service is adding a row; the options (``--NAME=SPEC``), the wiring, the
metrics and the loop guard follow from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from typing import Any

from twisted.internet.protocol import DatagramProtocol, Factory

from netproto.chargen import ChargenDatagramProtocol, ChargenFactory
from netproto.daytime import DaytimeDatagramProtocol, DaytimeFactory
from netproto.discard import DiscardDatagramProtocol, DiscardFactory
from netproto.echo import EchoDatagramProtocol, EchoFactory
from netproto.limits import Limits
from netproto.qotd import DEFAULT_QUOTES, QotdDatagramProtocol, QotdFactory
from netproto.time import TimeDatagramProtocol, TimeFactory

__all__ = ["SERVICES", "ServiceRow"]

TCPMaker = Callable[[Any, Limits, Mapping[str, Any]], Factory]
"""``(reactor, limits, options) -> factory``: the service's one TCP factory."""

UDPMaker = Callable[[Any, Limits, Mapping[str, Any], Set[int]], DatagramProtocol]
"""``(reactor, limits, options, served_ports) -> protocol``: one per UDP socket."""


@dataclass(frozen=True)
class ServiceRow:
    """One service of the plugin: ``--{name}=SPEC`` serves it."""

    name: str
    help: str
    """The option's help text."""
    tcp: TCPMaker
    udp: UDPMaker


def _daytime_options(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"fmt": options.get("daytime-format", "ctime"), "utc": bool(options.get("utc"))}


SERVICES: dict[str, ServiceRow] = {
    row.name: row
    for row in (
        ServiceRow(
            "daytime",
            "serve daytime (RFC 867) on SPEC; may be repeated",
            tcp=lambda reactor, limits, options: DaytimeFactory(
                reactor, limits, **_daytime_options(options)
            ),
            udp=lambda reactor, limits, options, served: DaytimeDatagramProtocol(
                reactor, limits, served_ports=served, **_daytime_options(options)
            ),
        ),
        ServiceRow(
            "echo",
            "serve echo (RFC 862) on SPEC; may be repeated",
            tcp=lambda reactor, limits, options: EchoFactory(reactor, limits),
            udp=lambda reactor, limits, options, served: EchoDatagramProtocol(
                reactor, limits, served_ports=served
            ),
        ),
        ServiceRow(
            "discard",
            "serve discard (RFC 863) on SPEC; may be repeated",
            tcp=lambda reactor, limits, options: DiscardFactory(reactor, limits),
            udp=lambda reactor, limits, options, served: DiscardDatagramProtocol(
                reactor, limits, served_ports=served
            ),
        ),
        ServiceRow(
            "chargen",
            "serve chargen (RFC 864) on SPEC; may be repeated. A UDP reply is never "
            "larger than its request unless --chargen-rfc-udp is given",
            tcp=lambda reactor, limits, options: ChargenFactory(reactor, limits),
            udp=lambda reactor, limits, options, served: ChargenDatagramProtocol(
                reactor, limits, rfc=bool(options.get("chargen-rfc-udp")), served_ports=served
            ),
        ),
        ServiceRow(
            "time",
            "serve time (RFC 868) on SPEC; may be repeated",
            tcp=lambda reactor, limits, options: TimeFactory(reactor, limits),
            udp=lambda reactor, limits, options, served: TimeDatagramProtocol(
                reactor, limits, served_ports=served
            ),
        ),
        ServiceRow(
            "qotd",
            "serve qotd (RFC 865) on SPEC, quotes from --qotd-file; may be repeated",
            tcp=lambda reactor, limits, options: QotdFactory(
                reactor, limits, quotes=options.get("qotd-quotes", DEFAULT_QUOTES)
            ),
            udp=lambda reactor, limits, options, served: QotdDatagramProtocol(
                reactor,
                limits,
                quotes=options.get("qotd-quotes", DEFAULT_QUOTES),
                served_ports=served,
            ),
        ),
    )
}
"""Every service, by name, in the order ``--help`` lists them."""
