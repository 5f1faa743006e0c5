"""
The rules :mod:`netproto.lookup` applies before and after any query: what is
an address literal and what is a host name, ``ADDR[:PORT]`` server
specifications, service names and ports, the order of answers and the choice
of one address for a network.

Nothing here touches the network, a file or a reactor.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address

from netproto.lookup._errors import InvalidLookupError, NameNotFoundError, ServiceNotFoundError
from netproto.util import (
    Address,
    AddressError,
    canonical,
    format_host_port,
    ipv4_mapped,
    parse_ip,
    parse_port,
    split_host_port,
)

__all__ = [
    "DEFAULT_DNS_PORT",
    "DEFAULT_TIMEOUT",
    "IP_NETWORKS",
    "MAX_CNAME_HOPS",
    "PORT_NETWORKS",
    "absolute",
    "check_host_name",
    "check_network",
    "format_server",
    "literal",
    "name_key",
    "order_addresses",
    "parse_server",
    "pick_address",
    "service_name",
    "service_port",
]

DEFAULT_DNS_PORT = 53
DEFAULT_TIMEOUT = 5.0
"""Seconds a lookup may take, all queries, retries and CNAME hops included."""

IP_NETWORKS = ("ip", "ip4", "ip6")
"""The networks of :func:`pick_address` (Go's ``ResolveIPAddr``)."""

PORT_NETWORKS = ("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6")
"""The networks of :func:`service_port` (Go's ``LookupPort``)."""


MAX_CNAME_HOPS = 10
"""How many CNAME records a lookup follows before giving up (BIND allows 16)."""

_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")


def check_host_name(name: str) -> str:
    """
    Return *name* if it is a host name that may be looked up, else raise
    :class:`InvalidLookupError` saying why.

    Accepted: ASCII labels of 1 to 63 letters, digits, hyphens and underscores
    (``_`` is common in real names), no hyphen at either end of a label, at
    most 253 characters, one optional trailing dot (an absolute name). Refused
    as well: a last label made only of digits (``127.1``, ``1.2.3``), which the
    C library would quietly turn into an address with ``inet_aton`` rules, and
    non-ASCII names (give their IDNA ``xn--`` form).
    """
    if not isinstance(name, str):
        raise InvalidLookupError(f"expected a host name as text, got {type(name).__name__}")
    if not name:
        raise InvalidLookupError("empty host name")
    if not name.isascii():
        raise InvalidLookupError("not an ASCII host name (give its IDNA xn-- form)")
    body = name[:-1] if name.endswith(".") else name
    if not body:
        raise InvalidLookupError("the root '.' is not a host name")
    if len(body) > 253:
        raise InvalidLookupError(f"host name longer than 253 characters ({len(body)})")
    labels = body.split(".")
    for label in labels:
        if not label:
            raise InvalidLookupError("empty label in host name")
        if len(label) > 63:
            raise InvalidLookupError(f"label longer than 63 characters ({len(label)})")
        if not _LABEL.match(label):
            bad = next((c for c in label if not (c.isalnum() or c in "-_")), None)
            if bad is not None:
                raise InvalidLookupError(f"character {bad!r} is not allowed in a host name")
            raise InvalidLookupError("a label of a host name cannot start or end with '-'")
    if labels[-1].isdigit():
        raise InvalidLookupError(
            "not an IP address, and not a host name (its last label is numeric)"
        )
    return name


def name_key(name: str) -> str:
    """The form under which names are compared: lower case, no trailing dot."""
    return name.lower().rstrip(".")


def absolute(name: str) -> str:
    """*name* fully qualified: with exactly one trailing dot."""
    return name.rstrip(".") + "."


def parse_server(text: str) -> tuple[str, int]:
    """
    Parse a DNS server specification ``ADDR[:PORT]`` into ``(address, port)``.

    ``ADDR`` is an IP address literal (no name: a resolver must not need a
    resolver to be found). An IPv6 address with a port is bracketed,
    ``[::1]:5353``; without a port it may be bare, ``::1``, or bracketed.
    ``PORT`` is a decimal number from 1 to 65535 and defaults to 53. The
    address comes back in canonical text form.

    :raises InvalidLookupError: with the reason, for anything else.
    """
    if not isinstance(text, str) or not text:
        raise InvalidLookupError("empty server address")
    try:
        host, port = split_host_port(text, DEFAULT_DNS_PORT)
        address = parse_ip(host)
    except AddressError as e:
        raise InvalidLookupError(f"server {text!r}: {e}") from None
    return canonical(address), port


def format_server(server: tuple[str, int]) -> str:
    """The ``ADDR:PORT`` text of a server, IPv6 bracketed: ``[::1]:5353``."""
    return format_host_port(*server)


def literal(text: str) -> Address | None:
    """
    The address *text* writes, or ``None`` if it is meant as a name. Text that
    looks like an address (only digits and dots, or any ``:`` or ``%``) but is
    not a valid one raises :class:`InvalidLookupError`: it is never sent to a
    resolver as if it were a name.
    """
    if not isinstance(text, str):
        raise InvalidLookupError(f"expected a host name as text, got {type(text).__name__}")
    try:
        return parse_ip(text, allow_scope=True)
    except AddressError as e:
        if ":" in text or "%" in text or (text and all(c.isdigit() or c == "." for c in text)):
            raise InvalidLookupError(f"{text}: {e}; not looked up as a host name") from None
        return None


def order_addresses(addresses: Iterable[Address]) -> list[Address]:
    """
    The order every lookup answers in: IPv4 addresses first, then IPv6, each
    family in the order its source gave (hosts file order, DNS answer order,
    the system resolver's order), duplicates dropped (the first kept).
    IPv4-mapped IPv6 addresses stay IPv6.
    """
    seen: set[Address] = set()
    v4: list[Address] = []
    v6: list[Address] = []
    for address in addresses:
        if address in seen:
            continue
        seen.add(address)
        (v4 if isinstance(address, IPv4Address) else v6).append(address)
    return v4 + v6


def check_network(network: str, allowed: Sequence[str] = IP_NETWORKS) -> str:
    """Return *network* if it is one of *allowed*, else raise :class:`InvalidLookupError`."""
    if network not in allowed:
        raise InvalidLookupError(f"unknown network {network!r} (use {', '.join(allowed)})")
    return network


def pick_address(addresses: Sequence[Address], network: str, name: str = "") -> Address:
    """
    The one address Go's ``ResolveIPAddr(network, name)`` picks from a
    lookup's answer (in the order of :func:`order_addresses`):

    - ``ip``: the first IPv4 address, else the first address;
    - ``ip4``: the first IPv4 address; an IPv4-mapped IPv6 address counts, and
      is returned as IPv4 (Go stores IPv4 addresses that way);
    - ``ip6``: the first IPv6 address that is not IPv4-mapped.

    :raises NameNotFoundError: nothing suits the network.
    """
    check_network(network)
    label = f"{name}: " if name else ""
    if network == "ip6":
        for address in addresses:
            if isinstance(address, IPv6Address) and address.ipv4_mapped is None:
                return address
        raise NameNotFoundError(f"{label}no IPv6 address")
    for address in addresses:
        v4 = ipv4_mapped(address) if network == "ip4" else None
        if isinstance(address, IPv4Address) or v4 is not None:
            return v4 or address
    if network == "ip" and addresses:
        return addresses[0]
    raise NameNotFoundError(f"{label}no IPv4 address" if network == "ip4" else f"{label}no address")


_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z")


def service_port(
    network: str,
    service: str,
    *,
    getservbyname: Callable[[str, str], int] = socket.getservbyname,
) -> int:
    """
    The port of *service* for *network* (Go's ``LookupPort``): ``tcp telnet``
    is 23, ``udp domain`` is 53.

    *network* is one of :data:`PORT_NETWORKS`; its protocol (``tcp`` or
    ``udp``) selects the entry of the services database, read through the C
    library's ``getservbyname`` (``/etc/services``; a local read under the
    usual ``nsswitch.conf``). The name is tried as given, then in lower case
    (the database's names are lower case, Go compares without case). A
    service made of decimal digits is a port number and passes through after a
    range check (0 to 65535, as in Go), without reading the database.

    :raises InvalidLookupError: unknown network, malformed service name, numeric
        port out of range.
    :raises ServiceNotFoundError: the database has no such service for the protocol.
    """
    check_network(network, PORT_NETWORKS)
    if not isinstance(service, str) or not service:
        raise InvalidLookupError("empty service name")
    if service.isascii() and service.isdigit():
        try:
            return parse_port(service, allow_zero=True)
        except AddressError as e:
            raise InvalidLookupError(str(e)) from None
    if not _SERVICE.match(service):
        raise InvalidLookupError(f"{service!r} is not a service name or a port number")
    protocol = network[:3]
    for candidate in dict.fromkeys((service, service.lower())):
        try:
            port = getservbyname(candidate, protocol)
        except OSError:
            continue
        if isinstance(port, int) and 0 <= port <= 65535:
            return port
    raise ServiceNotFoundError(f"{service}/{protocol}: unknown service")


def service_name(
    network: str,
    port: int | str,
    *,
    getservbyport: Callable[[int, str], str] = socket.getservbyport,
) -> str:
    """
    The name of the service on *port* for *network* (the reverse of
    :func:`service_port`, as ``getent services 23/tcp``): ``tcp 23`` is
    ``telnet``, from the services database through ``getservbyport``.

    :raises InvalidLookupError: unknown network, or *port* is not a port number
        (0 to 65535).
    :raises ServiceNotFoundError: the database names no service on that port.
    """
    check_network(network, PORT_NETWORKS)
    text = str(port)
    if not (text.isascii() and text.isdigit()):
        raise InvalidLookupError(f"{text!r} is not a port number")
    try:
        number = parse_port(text, allow_zero=True)
    except AddressError as e:
        raise InvalidLookupError(str(e)) from None
    protocol = network[:3]
    try:
        name = getservbyport(number, protocol)
    except OSError:
        raise ServiceNotFoundError(f"{number}/{protocol}: no service on this port") from None
    if not isinstance(name, str) or not _SERVICE.match(name):
        raise ServiceNotFoundError(f"{number}/{protocol}: no valid service name")
    return name
