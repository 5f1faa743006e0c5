"""
The ICMP echo codec: build echo requests, parse whatever an ICMP socket can
deliver. No sockets, no reactor, no clock.

IPv4 packets from a raw socket start with the IP header (its length is
IHL * 4, options included); IPv4 from a Linux ping socket and all ICMPv6
arrive without an IP header, the source address and TTL coming from the
socket. Every parser returns a :class:`Packet` and never raises, whatever the
input: what cannot be understood is a :data:`MALFORMED` packet with a reason.
Deciding whether a packet answers one of *our* probes is the job of
:class:`~netproto.ping.ProbeTable`.
"""

from __future__ import annotations

import socket
import struct

from netproto.util import checksum

__all__ = [
    "COOKIE_SIZE",
    "ECHO_REPLY",
    "ECHO_REQUEST",
    "ERROR",
    "MALFORMED",
    "OTHER",
    "Packet",
    "describe_error",
    "echo_request",
    "icmpv6_checksum",
    "parse_icmpv4",
    "parse_icmpv6",
    "parse_ipv4",
]

COOKIE_SIZE = 8
"""Bytes of random cookie at the start of every payload (fewer if the payload is shorter)."""

# What a Packet is.
ECHO_REPLY = "echo-reply"
ECHO_REQUEST = "echo-request"
ERROR = "error"
"""An ICMP error quoting an ICMP echo request."""
OTHER = "other"
"""A well-formed packet of no interest: another ICMP type, an error about
something else than an echo request, a protocol other than ICMP."""
MALFORMED = "malformed"

_REQUEST_TYPE = {4: 8, 6: 128}
_REPLY_TYPE = {4: 0, 6: 129}
_ERROR_TYPES = {4: frozenset({3, 11, 12}), 6: frozenset({1, 2, 3, 4})}

_HEADER = struct.Struct("!BBHHH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_ntop = socket.inet_ntop
_AF_INET = socket.AF_INET


class Packet:
    """
    One parsed ICMP message. For echo messages, *ident*, *seq* and *payload*
    are the message's own; for errors they are the quoted echo request's,
    *target* is the quoted destination, *source* the error's sender.
    """

    __slots__ = (
        "checksum_ok",
        "code",
        "ident",
        "kind",
        "payload",
        "quoted",
        "reason",
        "seq",
        "size",
        "source",
        "target",
        "ttl",
        "type",
    )

    def __init__(
        self,
        kind: str,
        source: str | None = None,
        ttl: int | None = None,
        type: int = -1,
        code: int = -1,
        ident: int = -1,
        seq: int = -1,
        payload: bytes = b"",
        checksum_ok: bool = True,
        target: str | None = None,
        size: int = 0,
        reason: str = "",
        quoted: bytes = b"",
    ) -> None:
        self.kind = kind
        """One of ECHO_REPLY, ECHO_REQUEST, ERROR, OTHER, MALFORMED."""
        self.source = source
        """The sender, as :func:`socket.inet_ntop` writes it (None if unknown)."""
        self.ttl = ttl
        """The IPv4 TTL or IPv6 hop limit, if known."""
        self.type = type
        self.code = code
        self.ident = ident
        self.seq = seq
        self.payload = payload
        self.checksum_ok = checksum_ok
        """False when the ICMP checksum does not verify (IPv4 only: the
        kernel verifies ICMPv6)."""
        self.target = target
        """For an error: the destination of the quoted echo request."""
        self.size = size
        """Bytes of ICMP message (header and data), as ping(8) counts them."""
        self.reason = reason
        """For a malformed packet: why, in a few words."""
        self.quoted = quoted
        """For an ICMP error (of kind ERROR, or OTHER when it quotes something
        else than an echo request): the quoted packet, from its IP header on,
        whose header was checked (version, IHL, at least 8 bytes after it)."""

    def __repr__(self) -> str:
        fields = " ".join(
            f"{name}={getattr(self, name)!r}"
            for name in self.__slots__
            if getattr(self, name) not in (None, -1, b"", "")
        )
        return f"<Packet {fields}>"


def echo_request(version: int, ident: int, seq: int, payload: bytes) -> bytes:
    """
    An ICMP echo request (IPv4 type 8, IPv6 type 128) with this identifier,
    sequence number (both taken modulo 65,536) and payload. The IPv4 checksum
    is filled in; the ICMPv6 one is left 0 for the kernel, which computes it
    on raw and ping sockets alike (it covers a pseudo-header the socket
    knows and we may not; see :func:`icmpv6_checksum`).

    A request with identifier 13, sequence 37 and no payload:

    >>> list(echo_request(4, 13, 37, b""))
    [8, 0, 247, 205, 0, 13, 0, 37]
    """
    kind_type = _REQUEST_TYPE[version]
    ident &= 0xFFFF
    seq &= 0xFFFF
    if version == 6:
        return _HEADER.pack(kind_type, 0, 0, ident, seq) + payload
    total = checksum(_HEADER.pack(kind_type, 0, 0, ident, seq) + payload)
    return _HEADER.pack(kind_type, 0, total, ident, seq) + payload


def icmpv6_checksum(source: str, destination: str, message: bytes) -> int:
    """
    The ICMPv6 checksum of *message* (its checksum field taken as 0) sent
    from *source* to *destination*: RFC 4443 §2.3, over the RFC 8200 §8.1
    pseudo-header.
    """
    zeroed = message[:2] + b"\0\0" + message[4:]
    pseudo = (
        socket.inet_pton(socket.AF_INET6, source)
        + socket.inet_pton(socket.AF_INET6, destination)
        + struct.pack("!I3xB", len(message), 58)
    )
    return checksum(pseudo + zeroed)


def _malformed(reason: str, source: str | None = None) -> Packet:
    return Packet(MALFORMED, source=source, reason=reason)


def parse_ipv4(data: bytes) -> Packet:
    """
    Parse an IPv4 packet as a raw ICMP socket delivers it (IP header first).

    The header is IHL * 4 bytes, options included; IHL < 5, a version other
    than 4, or a packet shorter than its header is malformed. A total length
    shorter than the data trims it (padding); a longer one is malformed.
    """
    try:
        return _parse_ipv4(data)
    except Exception as e:
        return _malformed(f"unparseable ({type(e).__name__})")


def _parse_ipv4(data: bytes) -> Packet:
    length = len(data)
    if length < 20:
        return _malformed(f"{length} bytes is shorter than an IPv4 header")
    first, _, total, _, fragment, ttl, protocol, _, source_bytes, _ = _IPV4.unpack_from(data)
    if first >> 4 != 4:
        return _malformed(f"IP version {first >> 4}, not 4")
    header = (first & 0x0F) * 4
    if header < 20:
        return _malformed(f"IHL {first & 0x0F} is less than 5")
    if total < header:
        return _malformed(f"total length {total} is shorter than the {header}-byte header")
    if total > length:
        return _malformed(f"truncated: {length} of {total} bytes")
    source = _ntop(_AF_INET, source_bytes)
    if protocol != 1:
        return Packet(OTHER, source, reason=f"IP protocol {protocol}")
    if fragment & 0x3FFF:  # MF flag or a fragment offset
        return Packet(OTHER, source, reason="an IP fragment")
    return _parse_icmp(4, data[header:total], source, ttl)


def parse_icmpv4(message: bytes, source: str | None, ttl: int | None = None) -> Packet:
    """
    Parse an ICMP message with no IP header (a Linux ping socket's delivery),
    from *source* with *ttl*. The checksum is verified.
    """
    try:
        return _parse_icmp(4, message, source, ttl)
    except Exception as e:
        return _malformed(f"unparseable ({type(e).__name__})", source)


def parse_icmpv6(message: bytes, source: str | None, hop_limit: int | None = None) -> Packet:
    """
    Parse an ICMPv6 message (sockets never deliver the IPv6 header) from
    *source* with *hop_limit*. The kernel verifies ICMPv6 checksums before
    delivery, so :attr:`Packet.checksum_ok` is always true here.
    """
    try:
        return _parse_icmp(6, message, source, hop_limit)
    except Exception as e:
        return _malformed(f"unparseable ({type(e).__name__})", source)


def _parse_icmp(version: int, message: bytes, source: str | None, ttl: int | None) -> Packet:
    size = len(message)
    if size < 8:
        return _malformed(f"ICMP message of {size} bytes is shorter than 8", source)
    kind_type, code, _, ident, seq = _HEADER.unpack_from(message)
    checksum_ok = version == 6 or checksum(message) == 0
    if kind_type == _REPLY_TYPE[version]:
        return Packet(
            ECHO_REPLY,
            source,
            ttl,
            kind_type,
            code,
            ident,
            seq,
            message[8:],
            checksum_ok,
            None,
            size,
        )
    if kind_type == _REQUEST_TYPE[version]:
        return Packet(
            ECHO_REQUEST,
            source,
            ttl,
            kind_type,
            code,
            ident,
            seq,
            message[8:],
            checksum_ok,
            None,
            size,
        )
    if kind_type not in _ERROR_TYPES[version]:
        return Packet(
            OTHER,
            source,
            ttl,
            kind_type,
            code,
            size=size,
            checksum_ok=checksum_ok,
            reason=f"ICMP type {kind_type}",
        )
    quoted = message[8:]
    if version == 4:
        return _quoted_ipv4(quoted, source, ttl, kind_type, code, checksum_ok, size)
    return _quoted_ipv6(quoted, source, ttl, kind_type, code, size)


def _quoted_ipv4(
    quoted: bytes,
    source: str | None,
    ttl: int | None,
    kind_type: int,
    code: int,
    checksum_ok: bool,
    size: int,
) -> Packet:
    """An IPv4 ICMP error: the quoted IP header (its own IHL) and >= 8 bytes."""
    if len(quoted) < 28:
        return _malformed(f"ICMP error quotes {len(quoted)} bytes, fewer than 28", source)
    if quoted[0] >> 4 != 4:
        return _malformed(f"ICMP error quotes IP version {quoted[0] >> 4}", source)
    header = (quoted[0] & 0x0F) * 4
    if header < 20:
        return _malformed(f"ICMP error quotes IHL {quoted[0] & 0x0F}", source)
    if len(quoted) < header + 8:
        return _malformed("ICMP error quotes fewer than 8 bytes after the IP header", source)
    if quoted[9] != 1 or quoted[header] != 8:
        return Packet(
            OTHER,
            source=source,
            ttl=ttl,
            type=kind_type,
            code=code,
            checksum_ok=checksum_ok,
            size=size,
            reason="an ICMP error about something else than an echo request",
            quoted=bytes(quoted),
        )
    _, _, _, ident, seq = _HEADER.unpack_from(quoted, header)
    return Packet(
        ERROR,
        source=source,
        ttl=ttl,
        type=kind_type,
        code=code,
        ident=ident,
        seq=seq,
        payload=bytes(quoted[header + 8 :]),
        checksum_ok=checksum_ok,
        size=size,
        target=socket.inet_ntop(socket.AF_INET, quoted[16:20]),
        quoted=bytes(quoted),
    )


def _quoted_ipv6(
    quoted: bytes,
    source: str | None,
    ttl: int | None,
    kind_type: int,
    code: int,
    size: int,
) -> Packet:
    """An ICMPv6 error: as much of the invoking packet as fits (RFC 4443)."""
    if len(quoted) < 48:
        return _malformed(f"ICMPv6 error quotes {len(quoted)} bytes, fewer than 48", source)
    if quoted[0] >> 4 != 6:
        return _malformed(f"ICMPv6 error quotes IP version {quoted[0] >> 4}", source)
    if quoted[6] != 58 or quoted[40] != 128:
        return Packet(
            OTHER,
            source=source,
            ttl=ttl,
            type=kind_type,
            code=code,
            size=size,
            reason="an ICMPv6 error about something else than an echo request",
            quoted=bytes(quoted),
        )
    _, _, _, ident, seq = _HEADER.unpack_from(quoted, 40)
    return Packet(
        ERROR,
        source=source,
        ttl=ttl,
        type=kind_type,
        code=code,
        ident=ident,
        seq=seq,
        payload=bytes(quoted[48:]),
        size=size,
        target=socket.inet_ntop(socket.AF_INET6, quoted[24:40]),
        quoted=bytes(quoted),
    )


_V4_UNREACHABLE = {
    0: "Destination Net Unreachable",
    1: "Destination Host Unreachable",
    2: "Destination Protocol Unreachable",
    3: "Destination Port Unreachable",
    4: "Frag needed",
    5: "Source Route Failed",
    6: "Destination Net Unknown",
    7: "Destination Host Unknown",
    8: "Source Host Isolated",
    9: "Destination Net Prohibited",
    10: "Destination Host Prohibited",
    11: "Destination Net Unreachable for Type of Service",
    12: "Destination Host Unreachable for Type of Service",
    13: "Packet filtered",
    14: "Precedence Violation",
    15: "Precedence Cutoff",
}
_V6_UNREACHABLE = {
    0: "No route",
    1: "Administratively prohibited",
    2: "Beyond scope of source address",
    3: "Address unreachable",
    4: "Port unreachable",
    5: "Source address failed ingress/egress policy",
    6: "Reject route to destination",
}


def describe_error(version: int, kind_type: int, code: int) -> str:
    """
    The words ping(8) prints for an ICMP error: ``Destination Host
    Unreachable``, ``Time to live exceeded``, ``Parameter problem``...
    """
    if version == 4:
        if kind_type == 3:
            return _V4_UNREACHABLE.get(code, f"Destination Unreachable, Bad Code: {code}")
        if kind_type == 11:
            return "Time to live exceeded" if code == 0 else "Frag reassembly time exceeded"
        if kind_type == 12:
            return "Parameter problem"
    else:
        if kind_type == 1:
            return _V6_UNREACHABLE.get(code, f"Destination unreachable: Unknown code {code}")
        if kind_type == 2:
            return "Packet too big"
        if kind_type == 3:
            return "Time exceeded: Hop limit" if code == 0 else "Time exceeded: Defrag"
        if kind_type == 4:
            return "Parameter problem"
    return f"ICMP type {kind_type} code {code}"
