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
    "PING_GROUP_RANGE_FIX",
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


PING_GROUP_RANGE_FIX = 'sysctl -w net.ipv4.ping_group_range="0 2147483647"'
"""
The command (run as root) that lets every group open unprivileged ping
sockets, as several distributions ship; a line
``net.ipv4.ping_group_range = 0 2147483647`` in a file of ``/etc/sysctl.d/``
keeps it across reboots. The setting is per network namespace.
"""


def _ping_group_range() -> tuple[int, int] | None:
    try:
        with open("/proc/sys/net/ipv4/ping_group_range") as f:
            low, high = f.read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def _groups() -> list[int]:
    """The groups the kernel checks against the range: the effective one, then the others."""
    return list(dict.fromkeys([os.getegid(), *os.getgroups()]))


def _admission(dgram_error: OSError) -> str:
    """Why this process may not open a ping socket, from the kernel's setting."""
    if dgram_error.errno == errno.EPROTONOSUPPORT:
        return "this kernel has none"
    groups = _ping_group_range()
    if groups is None:
        return dgram_error.strerror or str(dgram_error)
    low, high = groups
    if low > high:
        return f'net.ipv4.ping_group_range is "{low} {high}", which admits no group'
    yours = ", ".join(str(g) for g in _groups())
    return (
        f'net.ipv4.ping_group_range is "{low} {high}", which admits none of your groups ({yours})'
    )


_REMEDY = (
    f"to allow them for every group, run as root: {PING_GROUP_RANGE_FIX} "
    "(a file in /etc/sysctl.d/ keeps it)"
)


def _explain(family: int, mode: str, raw_error: OSError | None, dgram_error: OSError | None) -> str:
    """The one-line explanation, and the remedy, for the socket kind that was asked for."""
    name = "ICMPv6" if family == socket.AF_INET6 else "ICMP"
    if mode == RAW:
        assert raw_error is not None
        return (
            f"cannot open a raw {name} socket: raw sockets need root or CAP_NET_RAW "
            f"({raw_error.strerror}); without them, use an unprivileged ping socket (dgram)"
        )
    assert dgram_error is not None
    reason = _admission(dgram_error)
    if dgram_error.errno != errno.EPROTONOSUPPORT:
        reason += f"; {_REMEDY}"
    if mode == DGRAM:
        return f"cannot open an unprivileged {name} ping socket: {reason}"
    return (
        f"cannot open an {name} socket: raw sockets need root or CAP_NET_RAW, and "
        f"unprivileged ping sockets are not allowed: {reason}"
    )


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
                raise PingPermissionError(_explain(family, RAW, e, None)) from None
            raw_error = e
    try:
        return socket.socket(family, socket.SOCK_DGRAM, protocol), DGRAM
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT):
            raise
        raise PingPermissionError(_explain(family, mode, raw_error, e)) from None


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
