"""
Linux socket interfaces that the :mod:`socket` module does not export on
every supported Python: the ICMP type filters of raw sockets, and the error
queue (``IP_RECVERR``, ``IPV6_RECVERR``) with its extended-error record.
Shared by :mod:`netproto.ping` and :mod:`netproto.traceroute`, whose
unprivileged modes are Linux's.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "EXTENDED_ERR",
    "ICMP6_FILTER",
    "ICMP_FILTER",
    "IPV6_RECVERR",
    "IP_RECVERR",
    "IP_RECVTTL",
    "SOL_RAW",
    "SO_EE_ORIGIN_ICMP",
    "SO_EE_ORIGIN_ICMP6",
    "SO_RCVBUFFORCE",
    "SO_TIMESTAMPNS",
    "ExtendedError",
    "bitmap_allowing",
    "extended_error",
    "kernel_time",
    "set_receive_buffer",
]

SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1
IP_RECVERR = 11
IP_RECVTTL = 12
IPV6_RECVERR = 25
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35
EXTENDED_ERR = struct.Struct("=IBBBBII")
"""``struct sock_extended_err``: errno, origin, type, code, pad, info, data."""

_TIMESPEC = struct.Struct("=qq")
_ERROR_LEVELS = {(socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)}


def set_receive_buffer(sock: socket.socket, size: int) -> None:
    """
    Give *sock* a receive buffer of *size* bytes: beyond ``net.core.rmem_max``
    with ``CAP_NET_ADMIN`` (``SO_RCVBUFFORCE``), else as much as it allows.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def bitmap_allowing(types: set[int], words: int) -> bytes:
    """A Linux ICMP filter: one bit per type, set for the types to block."""
    bits = 0
    for t in range(32 * words):
        if t not in types:
            bits |= 1 << t
    return struct.pack(f"={words}I", *((bits >> (32 * i)) & 0xFFFFFFFF for i in range(words)))


class ExtendedError(NamedTuple):
    """An ICMP error as the error queue reports it (``struct sock_extended_err``)."""

    type: int
    """The ICMP type (time exceeded, destination unreachable...)."""
    code: int
    info: int
    """The type's extra field: the next-hop MTU of "fragmentation needed"."""
    offender: str
    """Who sent the ICMP error: a router, or the destination."""


def extended_error(cmsgs: Iterable[tuple[int, int, bytes]], version: int) -> ExtendedError | None:
    """
    The ICMP error in the ancillary data of a ``recvmsg(..., MSG_ERRQUEUE)``
    on an IPv*version* socket, or ``None`` when there is none (a local error,
    a truncated record).
    """
    for level, kind, value in cmsgs:
        if (level, kind) not in _ERROR_LEVELS or len(value) < EXTENDED_ERR.size + 8:
            continue
        _, origin, kind_type, code, _, info, _ = EXTENDED_ERR.unpack_from(value)
        if origin not in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6):
            return None
        offender = value[EXTENDED_ERR.size :]
        if version == 6 and len(offender) >= 24:
            source = socket.inet_ntop(socket.AF_INET6, offender[8:24])
        elif version == 4:
            source = socket.inet_ntop(socket.AF_INET, offender[4:8])
        else:
            return None
        return ExtendedError(kind_type, code, info, source)
    return None


def kernel_time(cmsgs: Iterable[tuple[int, int, bytes]]) -> float | None:
    """
    When the kernel received a packet (``SO_TIMESTAMPNS``, wall-clock seconds),
    from the ancillary data of a ``recvmsg``; ``None`` without a timestamp.
    """
    for level, kind, value in cmsgs:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(value)
            return float(seconds + nanoseconds / 1e9)
    return None
