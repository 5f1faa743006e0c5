"""
Batched sends and receives for sweeps: Linux ``sendmmsg(2)`` and
``recvmmsg(2)`` through :mod:`ctypes`, up to 64 IPv4 datagrams a system
call, in buffers allocated once. Where the C library lacks the call (or the
socket is not a real one), :func:`batch_sender` and :func:`batch_receiver`
return None: the sweep then sends one ``sendto`` at a time, and the socket
reads one ``recv`` at a time.

(``netproto._listen._mmsg`` has its own pair for UDP services, which need
the source address and ancillary data of each datagram; a raw ICMP socket
needs neither: the IPv4 header says who sent it.)
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import socket
import struct
from typing import Any

__all__ = ["SLOTS", "BatchReceiver", "BatchSender", "batch_receiver", "batch_sender"]

SLOTS = 64
"""Datagrams per ``sendmmsg`` call."""


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_Iovec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


_SOCKADDR_IN = struct.Struct("=HH4s8x")


def _sendmmsg() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_SEND = _sendmmsg()


def _recvmmsg() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    ]
    function.restype = ctypes.c_int
    return function


_RECV = _recvmmsg()
_ENTRY = ctypes.sizeof(_Mmsghdr)
_LEN = _Mmsghdr.len.offset
# The msg_len fields of the first k entries, for each k.
_LENGTHS = [struct.Struct("@" + f"{_LEN}xI{_ENTRY - _LEN - 4}x" * k) for k in range(SLOTS + 1)]


class BatchSender:
    """
    :data:`SLOTS` (or *slots*) echo requests of one size, sent in one
    ``sendmmsg`` call (more only when one fails). Every slot starts as a
    copy of *template*: the send loop writes only what varies, the fields
    from byte 2 of a request into :attr:`data` at ``k * size``, the IPv4
    address into :attr:`names` at ``k * 16 + 4`` (a ``sockaddr_in`` each).
    """

    def __init__(self, fd: int, template: bytes, slots: int = SLOTS) -> None:
        self.fd = fd
        self.size = size = len(template)
        self.slots = slots
        self.xs = [0] * slots
        """Where in the walk each queued probe was (the send loop's bookkeeping)."""
        self.steps = [0] * slots
        self._buffer = ctypes.create_string_buffer(template * slots, slots * size)
        self._names = ctypes.create_string_buffer(slots * 16)
        self._iovecs = (_Iovec * slots)()
        self._messages = (_Mmsghdr * slots)()
        base, names = ctypes.addressof(self._buffer), ctypes.addressof(self._names)
        self.data = memoryview(self._buffer).cast("B")
        self.names = memoryview(self._names).cast("B")
        for k in range(slots):
            self._iovecs[k].base = base + k * size
            self._iovecs[k].len = size
            message = self._messages[k].hdr
            message.name = names + k * 16
            message.namelen = 16
            message.iov = ctypes.pointer(self._iovecs[k])
            message.iovlen = 1
            _SOCKADDR_IN.pack_into(self.names, k * 16, socket.AF_INET, 0, bytes(4))
        self._entry = ctypes.sizeof(_Mmsghdr)
        self._first = ctypes.addressof(self._messages)

    def flush(self, count: int) -> tuple[int, list[tuple[int, int]]]:
        """
        Send the first *count* slots: (how many were dealt with, [(slot,
        errno)] of those that failed for good). Slots from the first
        dealt-with count on found the kernel full (EAGAIN, ENOBUFS): queue
        them again later.
        """
        start, failed = 0, []
        while start < count:
            sent, code = self._send(start, count - start)
            if sent > 0:
                start += sent
                continue
            if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS):
                break
            if code == errno.EINTR:
                continue
            failed.append((start, code))
            start += 1
        return start, failed

    def _send(self, start: int, count: int) -> tuple[int, int]:
        """One ``sendmmsg`` of *count* slots from slot *start*: (datagrams sent, errno)."""
        sent: int = _SEND(self.fd, self._first + start * self._entry, count, 0)
        return sent, ctypes.get_errno() if sent <= 0 else 0


class BatchReceiver:
    """
    Reads up to :data:`SLOTS` datagrams of at most *size* bytes each (the
    rest of a longer one is cut off, as ``recv(size)`` does) from descriptor
    *fd* in one ``recvmmsg`` call, without their addresses.
    """

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        # An anonymous private mapping: slices of it are bytes, in one step;
        # pages a small datagram never reaches cost nothing.
        self._area = mmap.mmap(-1, SLOTS * size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self._area))
        self._iovecs = (_Iovec * SLOTS)()
        self._messages = (_Mmsghdr * SLOTS)()
        for k in range(SLOTS):
            self._iovecs[k].base = base + k * size
            self._iovecs[k].len = size
            message = self._messages[k].hdr
            message.iov = ctypes.pointer(self._iovecs[k])
            message.iovlen = 1
        self._first = ctypes.addressof(self._messages)
        self._view = memoryview(self._messages).cast("B")
        self._starts = range(0, SLOTS * size, size)

    def receive(self, limit: int = SLOTS) -> list[bytes]:
        """
        The datagrams waiting, up to *limit* (at most :data:`SLOTS`), oldest
        first; an empty list when none is.

        :raises OSError: for an error other than ``EAGAIN`` or ``EINTR``.
        """
        got = _RECV(self.fd, self._first, min(limit, SLOTS), socket.MSG_DONTWAIT, None)
        if got <= 0:
            if got < 0:
                code = ctypes.get_errno()
                if code not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                    raise OSError(code, os.strerror(code))
            return []
        area = self._area
        lengths = _LENGTHS[got].unpack_from(self._view)
        return [area[at : at + n] for at, n in zip(self._starts, lengths, strict=False)]


def batch_receiver(sock: Any, size: int) -> BatchReceiver | None:
    """A :class:`BatchReceiver` for raw IPv4 socket *sock*, None without ``recvmmsg``."""
    if _RECV is None or not isinstance(sock, socket.socket) or sock.family != socket.AF_INET:
        return None
    return BatchReceiver(sock.fileno(), size)


def batch_sender(sock: Any, template: bytes) -> BatchSender | None:
    """
    A :class:`BatchSender` of requests like *template* for IPv4 socket
    *sock*, None where ``sendmmsg`` is not to be had.
    """
    if _SEND is None or not isinstance(sock, socket.socket) or sock.family != socket.AF_INET:
        return None
    return BatchSender(sock.fileno(), template)
