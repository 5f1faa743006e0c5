"""Hand-built IPv4 and ICMP packets for the ping tests (shared with the namespace helpers)."""

from __future__ import annotations

import socket
import struct

from netproto.util import checksum


def icmp(kind: int, code: int, ident: int, seq: int, payload: bytes, *, good: bool = True) -> bytes:
    """An ICMPv4 echo message with a correct (or, if not *good*, a wrong) checksum."""
    message = bytearray(struct.pack("!BBHHH", kind, code, 0, ident, seq) + payload)
    total = checksum(message)
    struct.pack_into("!H", message, 2, total if good else total ^ 0x5A5A)
    return bytes(message)


def icmp_error(kind: int, code: int, quoted: bytes) -> bytes:
    """An ICMPv4 error (unreachable, time exceeded...) quoting *quoted*."""
    message = bytearray(struct.pack("!BBHI", kind, code, 0, 0) + quoted)
    struct.pack_into("!H", message, 2, checksum(message))
    return bytes(message)


def ipv4(
    source: str,
    destination: str,
    data: bytes,
    *,
    ihl: int = 5,
    ttl: int = 64,
    protocol: int = 1,
    total: int | None = None,
) -> bytes:
    """
    An IPv4 packet carrying *data*, with IHL *ihl* (options of NOPs ending
    with End of Options fill the extra words) and a correct header checksum.
    """
    options = b""
    if ihl > 5:
        options = b"\x01" * ((ihl - 5) * 4 - 1) + b"\x00"
    length = ihl * 4 + len(data) if total is None else total
    header = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | (ihl & 0x0F),
            0,
            length & 0xFFFF,
            0x1234,
            0,
            ttl,
            protocol,
            0,
            socket.inet_aton(source),
            socket.inet_aton(destination),
        )
        + options
    )
    struct.pack_into("!H", header, 10, checksum(header))
    return bytes(header) + data


def ipv6_header(
    source: str, destination: str, payload_length: int, next_header: int = 58, hop_limit: int = 64
) -> bytes:
    """A fixed IPv6 header (no extension headers)."""
    return struct.pack(
        "!IHBB16s16s",
        6 << 28,
        payload_length,
        next_header,
        hop_limit,
        socket.inet_pton(socket.AF_INET6, source),
        socket.inet_pton(socket.AF_INET6, destination),
    )
