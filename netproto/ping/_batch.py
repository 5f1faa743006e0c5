"""
Batched sends for sweeps: Linux ``sendmmsg(2)`` through :mod:`ctypes`, up to
64 IPv4 datagrams a system call, written into buffers allocated once. Where
the C library has no ``sendmmsg`` (or the socket is not a real one),
:func:`batch_sender` returns None and the sweep sends one ``sendto`` at a
time.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
from typing import Any

__all__ = ["SLOTS", "BatchSender", "batch_sender"]

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


class BatchSender:
    """
    Up to :data:`SLOTS` echo requests of *size* bytes at most, queued with
    :meth:`add` and sent with :meth:`flush` in one ``sendmmsg`` call (more
    only when one fails).
    """

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.count = 0
        self._buffer = ctypes.create_string_buffer(SLOTS * size)
        self._names = ctypes.create_string_buffer(SLOTS * 16)
        self._iovecs = (_Iovec * SLOTS)()
        self._messages = (_Mmsghdr * SLOTS)()
        base, names = ctypes.addressof(self._buffer), ctypes.addressof(self._names)
        for k in range(SLOTS):
            self._iovecs[k].base = base + k * size
            message = self._messages[k].hdr
            message.name = names + k * 16
            message.namelen = 16
            message.iov = ctypes.pointer(self._iovecs[k])
            message.iovlen = 1
        self._data = memoryview(self._buffer).cast("B")
        self._address = memoryview(self._names).cast("B")
        self._entry = ctypes.sizeof(_Mmsghdr)
        self._first = ctypes.addressof(self._messages)

    def add(self, data: bytes, packed: bytes) -> bool:
        """Queue *data* for IPv4 address *packed*; True when the batch is full."""
        k = self.count
        at = k * self.size
        self._data[at : at + len(data)] = data
        self._iovecs[k].len = len(data)
        _SOCKADDR_IN.pack_into(self._address, k * 16, socket.AF_INET, 0, packed)
        self.count = k + 1
        return k + 1 == SLOTS

    def flush(self) -> tuple[int, list[tuple[int, int]]]:
        """
        Send what is queued: (how many were dealt with, [(slot, errno)] of
        those that failed for good). Slots from the first dealt-with count on
        found the kernel full (EAGAIN, ENOBUFS): queue them again later.
        """
        start, count, failed = 0, self.count, []
        while start < count:
            sent = _SEND(self.fd, self._first + start * self._entry, count - start, 0)
            if sent > 0:
                start += sent
                continue
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS):
                break
            if code == errno.EINTR:
                continue
            failed.append((start, code))
            start += 1
        self.count = 0
        return start, failed


def batch_sender(sock: Any, size: int) -> BatchSender | None:
    """A :class:`BatchSender` for IPv4 socket *sock*, None where ``sendmmsg`` is not to be had."""
    if _SEND is None or not isinstance(sock, socket.socket) or sock.family != socket.AF_INET:
        return None
    return BatchSender(sock.fileno(), size)
