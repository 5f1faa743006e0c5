"""
Opening ICMP sockets on Linux: raw or unprivileged ping sockets, the
one-line explanation when neither is allowed, and the kernel-side filters
(``ICMP_FILTER``, ``ICMP6_FILTER``, a classic BPF program) that keep other
traffic away from a raw socket.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Any

__all__ = [
    "AUTO",
    "DGRAM",
    "RAW",
    "SO_ATTACH_FILTER",
    "PingPermissionError",
    "open_icmp_socket",
    "reply_filter",
]

RAW = "raw"
DGRAM = "dgram"
AUTO = "auto"

# A Linux constant the socket module does not export (the shared ones are in
# netproto._linux).
SO_ATTACH_FILTER = 26

_PROTOCOL: dict[int, int] = {
    socket.AF_INET: socket.IPPROTO_ICMP,
    socket.AF_INET6: socket.IPPROTO_ICMPV6,
}


class PingPermissionError(Exception):
    """No ICMP socket can be opened; the message says why and what to do, in one line."""


def _ping_group_range() -> tuple[int, int] | None:
    try:
        with open("/proc/sys/net/ipv4/ping_group_range") as f:
            low, high = f.read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def _explain(family: int, raw_error: OSError, dgram_error: OSError | None) -> str:
    name = "ICMPv6" if family == socket.AF_INET6 else "ICMP"
    reason = f"cannot open an {name} socket: raw sockets need root or CAP_NET_RAW"
    if dgram_error is None:
        return f"{reason} ({raw_error.strerror})"
    groups = _ping_group_range()
    if groups is not None:
        low, high = groups
        shown = "none" if low > high else f"{low}-{high}"
        reason += (
            f", and unprivileged ping sockets admit groups {shown} "
            f"(net.ipv4.ping_group_range), not {os.getgid()}"
        )
    else:
        reason += f", and unprivileged ping sockets are refused ({dgram_error.strerror})"
    return reason + "; run as root, or widen net.ipv4.ping_group_range"


def open_icmp_socket(family: int, mode: str = AUTO) -> tuple[socket.socket, str]:
    """
    Open an ICMP socket of *family* (``AF_INET``/``AF_INET6``): ``raw``,
    ``dgram`` (an unprivileged ping socket) or ``auto`` (raw if permitted,
    else dgram). Return the socket and the mode chosen.

    :raises PingPermissionError: neither kind can be opened; the message
        explains why in one line.
    """
    protocol = _PROTOCOL[family]
    raw_error: OSError | None = None
    if mode in (RAW, AUTO):
        try:
            return socket.socket(family, socket.SOCK_RAW, protocol), RAW
        except PermissionError as e:
            if mode == RAW:
                raise PingPermissionError(_explain(family, e, None)) from None
            raw_error = e
    try:
        return socket.socket(family, socket.SOCK_DGRAM, protocol), DGRAM
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT):
            raise
        if raw_error is None:
            raw_error = PermissionError(errno.EPERM, "not tried")
        raise PingPermissionError(_explain(family, raw_error, e)) from None


def _bpf(*instructions: tuple[int, int, int, int]) -> bytes:
    """A ``struct sock_fprog`` for these classic BPF instructions (code, jt, jf, k)."""
    import ctypes

    program = b"".join(struct.pack("=HBBI", *i) for i in instructions)
    buffer = ctypes.create_string_buffer(program, len(program))
    # The kernel copies the program during setsockopt; the buffer only has
    # to live until then, and _FILTERS keeps it alive.
    _FILTERS.append(buffer)
    del _FILTERS[:-8]
    return struct.pack("HL", len(instructions), ctypes.addressof(buffer))


_FILTERS: list[Any] = []


def reply_filter(version: int, ident: int) -> bytes:
    """
    Accept every ICMP message except echo replies whose identifier is not
    *ident*. IPv4 raw sockets see the IP header first (its length from IHL);
    ICMPv6 raw sockets see the ICMPv6 header first.
    """
    accept, drop = 0xFFFFFFFF, 0
    if version == 4:
        return _bpf(
            (0xB1, 0, 0, 0),  # X = 4 * (IP[0] & 0x0f): the IP header length
            (0x48, 0, 0, 4),  # A = ICMP identifier (half-word at X + 4)
            (0x15, 2, 0, ident),  # ours: accept
            (0x50, 0, 0, 0),  # A = ICMP type (byte at X)
            (0x15, 1, 0, 0),  # someone else's echo reply: drop
            (0x06, 0, 0, accept),
            (0x06, 0, 0, drop),
        )
    return _bpf(
        (0x28, 0, 0, 4),  # A = ICMPv6 identifier
        (0x15, 2, 0, ident),  # ours: accept
        (0x30, 0, 0, 0),  # A = ICMPv6 type
        (0x15, 1, 0, 129),  # someone else's echo reply: drop
        (0x06, 0, 0, accept),
        (0x06, 0, 0, drop),
    )
