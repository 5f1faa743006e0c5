"""
Ping targets: address literals and CIDR ranges expanded, checked, each once,
in the form sockets report sources in.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from netproto.lookup import InvalidLookupError, check_host_name
from netproto.util import AddressError, canonical, parse_ip

__all__ = ["MAX_TARGETS", "TargetList", "address_text", "expand_targets"]

MAX_TARGETS = 1 << 20
"""The largest sweep :func:`expand_targets` builds (a /12 of IPv4)."""


class TargetList(list[str]):
    """
    Addresses as :func:`expand_targets` returns them: checked, each once, in
    the form sockets report sources in. :class:`Sweep` takes them as they are.
    """


def expand_targets(
    texts: Iterable[str], version: int | None = None, limit: int = MAX_TARGETS
) -> TargetList:
    """
    The addresses named by *texts*: address literals and CIDR ranges
    (``127.0.0.0/24``: its hosts, without the network and broadcast
    addresses of IPv4 ranges larger than /31), in order, each once. With
    *version*, every target must be of that IP version.

    :raises AddressError: a text is neither, is of the wrong version, or
        the total passes *limit* addresses.
    """
    everything: list[str] = []
    for text in texts:
        text_version, addresses = _expand(text, limit)
        if version is not None and text_version != version:
            raise AddressError(f"{text} is not an IPv{version} target")
        everything.extend(addresses)
        if len(everything) > limit:
            everything = list(dict.fromkeys(everything))
            if len(everything) > limit:
                raise AddressError(f"more than {limit} targets")
    return TargetList(dict.fromkeys(everything))


_OCTETS = [str(i) for i in range(256)]


def _expand(text: str, limit: int) -> tuple[int, Iterable[str]]:
    if "/" not in text:
        try:
            address = parse_ip(text)
        except AddressError:
            if _is_name(text):
                raise AddressError(
                    f"{text}: give an address, not a name (netproto.lookup resolves names)"
                ) from None
            raise
        return address.version, [_socket_form(canonical(address))]
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise AddressError(f"{text}: not a valid CIDR range ({e})") from None
    if net.num_addresses > limit + 2:
        raise AddressError(f"{text} has {net.num_addresses} addresses, more than {limit}")
    if net.version == 6:
        return 6, [_socket_form(str(a)) for a in net.hosts()]
    first = int(net.network_address)
    last = int(net.broadcast_address)
    if net.prefixlen < 31:
        first, last = first + 1, last - 1
    # Whole runs of the last octet at a time: a /20 in a fraction of a millisecond.
    out: list[str] = []
    for high in range(first >> 8, (last >> 8) + 1):
        prefix = f"{high >> 16}.{high >> 8 & 255}.{high & 255}."
        low, up = max(first, high << 8) & 255, min(last, high << 8 | 255) & 255
        out += [prefix + octet for octet in _OCTETS[low : up + 1]]
    return 4, out


def _is_name(text: str) -> bool:
    """Whether *text*, not an address, is a host name (which a ping target may not be)."""
    try:
        check_host_name(text)
    except InvalidLookupError:
        return False
    return True


def _socket_form(text: str) -> str:
    """An address literal as :func:`socket.inet_ntop` writes it (sockets report sources so)."""
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, text))
    except (OSError, ValueError):
        return canonical(parse_ip(text))


def address_text(text: str) -> str:
    """
    An address literal in the form sockets report sources in, or
    :class:`~netproto.util.AddressError` (zones such as ``%eth0`` included:
    link-local targets are not supported).
    """
    if "/" in text:
        raise AddressError(f"{text}: one address, not a range")
    return expand_targets([text])[0]
