"""
The traceroute codec: probe payloads, the UDP header an ICMP error quotes,
and what an answer means to a trace (traceroute(8)'s ``!H !N !P !X`` marks).
No sockets, no reactor, no clock.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

__all__ = [
    "BASE_PORT",
    "COOKIE_SIZE",
    "DATAGRAM",
    "IP_HEADER",
    "UDP_PORT",
    "UdpQuote",
    "interpret",
    "probe_payload",
    "udp_quote",
]

BASE_PORT = 33434
"""The first destination port of classic UDP probes (one port per probe after it)."""
UDP_PORT = 53
"""The one destination port of constant-flow UDP probes (traceroute(8)'s ``-U``)."""
COOKIE_SIZE = 8
"""Random bytes at the start of every payload (fewer when the payload is shorter)."""
DATAGRAM = -1
"""The type of an answer that is no ICMP message: a UDP datagram back from
the probed port (a service answered)."""
IP_HEADER = {4: 20, 6: 40}
"""Bytes of IP header in front of a probe, as traceroute(8) counts packet sizes."""

_UDP = struct.Struct("!HHHH")
_FILLER = bytes(range(0x40, 0x40 + 64)) * 1024


def probe_payload(size: int, cookie: bytes) -> bytes:
    """A payload of *size* bytes: *cookie* first (cut to fit), then a fixed filler."""
    head = cookie[:size]
    return head + _FILLER[: size - len(head)]


class UdpQuote(NamedTuple):
    """The UDP datagram an ICMP error quotes: its addresses, ports and what is left of it."""

    source: str
    destination: str
    source_port: int
    destination_port: int
    payload: bytes
    """The quoted payload: the whole of it, the first bytes, or nothing (an
    RFC 792 quote stops after the UDP header)."""


def udp_quote(version: int, quoted: bytes) -> UdpQuote | None:
    """
    The UDP datagram *quoted* holds (from its IP header on, as
    :attr:`netproto.ping.Packet.quoted` keeps it), or ``None`` when it quotes
    another protocol or too little. An IPv4 header's own length (IHL) is
    honoured; an IPv6 quote must carry UDP right after the fixed header.
    """
    if version == 4:
        if len(quoted) < 20:
            return None
        header = (quoted[0] & 0x0F) * 4
        if quoted[0] >> 4 != 4 or header < 20 or quoted[9] != 17 or len(quoted) < header + 8:
            return None
        total = int.from_bytes(quoted[2:4], "big")
        family, source, destination = socket.AF_INET, quoted[12:16], quoted[16:20]
    else:
        header = 40
        if len(quoted) < 48 or quoted[0] >> 4 != 6 or quoted[6] != 17:
            return None
        total = 40 + int.from_bytes(quoted[4:6], "big")
        family, source, destination = socket.AF_INET6, quoted[8:24], quoted[24:40]
    source_port, destination_port, _, _ = _UDP.unpack_from(quoted, header)
    end = min(len(quoted), max(total, header + 8))
    return UdpQuote(
        socket.inet_ntop(family, source),
        socket.inet_ntop(family, destination),
        source_port,
        destination_port,
        bytes(quoted[header + 8 : end]),
    )


# IPv4 destination unreachable codes (RFC 792, RFC 1812) and their marks.
_V4_MARKS = {
    0: "!N",  # net unreachable
    1: "!H",  # host unreachable
    2: "!P",  # protocol unreachable
    3: "",  # port unreachable: the destination answered
    4: "!F",  # fragmentation needed (with the next-hop MTU)
    5: "!S",  # source route failed
    6: "!N",  # destination network unknown
    7: "!H",  # destination host unknown
    8: "!N",  # source host isolated
    9: "!X",  # network administratively prohibited
    10: "!X",  # host administratively prohibited
    11: "!N",  # network unreachable for type of service
    12: "!H",  # host unreachable for type of service
    13: "!X",  # communication administratively prohibited (filtered)
    14: "!V",  # host precedence violation
    15: "!C",  # precedence cutoff in effect
}
# ICMPv6 destination unreachable codes (RFC 4443) and their marks.
_V6_MARKS = {
    0: "!N",  # no route to destination
    1: "!X",  # administratively prohibited
    2: "!H",  # beyond scope of source address
    3: "!H",  # address unreachable
    4: "",  # port unreachable: the destination answered
}


def interpret(version: int, kind_type: int, code: int, info: int = 0) -> tuple[bool, str]:
    """
    What an ICMP answer of *kind_type* and *code* means to a trace, as
    traceroute(8) reads it: ``(final, mark)``. A hop limit exceeded in transit
    is ``(False, "")``: a router on the way. An echo reply or a port
    unreachable is ``(True, "")``: the destination, as is a UDP datagram back
    from it (*kind_type* :data:`DATAGRAM`). Anything else ends the
    trace too, with a mark: ``!N``, ``!H``, ``!P``, ``!X``, ``!S``, ``!V``,
    ``!C``, ``!F-MTU`` (*info* is the next-hop MTU), ``!<CODE>`` for other
    unreachable codes and ``!<TYPE-CODE>`` for other types.

    >>> interpret(4, 11, 0), interpret(4, 3, 3), interpret(4, 3, 13), interpret(6, 1, 0)
    ((False, ''), (True, ''), (True, '!X'), (True, '!N'))
    """
    if kind_type == DATAGRAM:
        return True, ""
    if version == 4:
        if kind_type == 11 and code == 0:
            return False, ""
        if kind_type == 0:
            return True, ""
        if kind_type == 3:
            mark = _V4_MARKS.get(code, f"!<{code}>")
            return True, f"!F-{info}" if code == 4 else mark
    else:
        if kind_type == 3 and code == 0:
            return False, ""
        if kind_type == 129:
            return True, ""
        if kind_type == 1:
            return True, _V6_MARKS.get(code, f"!<{code}>")
        if kind_type == 2:
            return True, f"!F-{info}"
    return True, f"!<{kind_type}-{code}>"
