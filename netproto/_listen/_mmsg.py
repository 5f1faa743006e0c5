"""
Datagrams in batches on Linux: ``recvmmsg(2)`` and ``sendmmsg(2)`` through
:mod:`ctypes`, one system call for up to :data:`BATCH` datagrams each way.

:func:`batch` returns the process's one :class:`Batch` (its buffers are
shared by every port: the reactor runs one ``doRead`` at a time and every
datagram is copied out before the next read), or ``None`` where the calls
are missing (not Linux, no ``ctypes``, an old C library): the caller then
reads one datagram per ``recvmsg``.

Buffers are anonymous ``mmap`` areas: pages the kernel never writes to
(the tail of each 64 KiB slot, for small datagrams) cost no memory.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import socket
import struct
import sys
from collections.abc import Sequence
from itertools import accumulate, chain, repeat
from typing import Any

__all__ = ["BATCH", "SLOT", "Batch", "ancillary_items", "batch"]

BATCH = 64
"""The most datagrams one call reads (and one reply batch sends): the bound per reactor turn."""

SLOT = 65535
"""Bytes per datagram slot: the largest UDP payload, plus headroom."""

_NAME = 128  # sizeof(struct sockaddr_storage)
_CONTROL = socket.CMSG_SPACE(12) + socket.CMSG_SPACE(20)  # in_pktinfo and in6_pktinfo


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


_ENTRY = ctypes.sizeof(_MMsgHdr)
_IOV = ctypes.sizeof(_IOVec)
_NAMELEN = _MsgHdr.namelen.offset
_CONTROLLEN = _MsgHdr.controllen.offset
_LEN = _MMsgHdr.len.offset


def _layout(fields: list[tuple[int, str]], size: int) -> str:
    """A struct format with *fields* ``(offset, code)`` at their offsets, *size* bytes in all."""
    fmt, at = "", 0
    for offset, code in sorted(fields):
        fmt += "x" * (offset - at) + code
        at = offset + struct.calcsize("@" + code)
    return "@" + fmt + "x" * (size - at)


_U = "N" if ctypes.sizeof(ctypes.c_size_t) == 8 else "I"
# What recv reads of one mmsghdr: (namelen, controllen, len).
_FIELDS = struct.Struct(_layout([(_NAMELEN, "I"), (_CONTROLLEN, _U), (_LEN, "I")], _ENTRY))
# One iovec (base, len), and one whole mmsghdr as send writes it: (name, namelen,
# iov, iovlen, control, controllen, flags, len). Pad bytes are written as zeros,
# so every field is written.
_IOV_FIELDS = "@PN"
_MSG_FIELDS = _layout(
    [
        (_MsgHdr.name.offset, "P"),
        (_NAMELEN, "I"),
        (_MsgHdr.iov.offset, "P"),
        (_MsgHdr.iovlen.offset, _U),
        (_MsgHdr.control.offset, "P"),
        (_CONTROLLEN, _U),
        (_MsgHdr.flags.offset, "i"),
        (_LEN, "I"),
    ],
    _ENTRY,
)
# Where each slot starts in the receive areas.
_DATA_AT = range(0, BATCH * SLOT, SLOT)
_NAME_AT = range(0, BATCH * _NAME, _NAME)
_CONTROL_AT = range(0, BATCH * _CONTROL, _CONTROL)
_SLOTS = tuple(zip(_DATA_AT, _NAME_AT, _CONTROL_AT, strict=True))
# iovlen 1, no control data, flags and len 0: the rest of every mmsghdr sent.
_TAIL = (repeat(1), repeat(0), repeat(0), repeat(0), repeat(0))
_REPEATED: dict[tuple[str, int], struct.Struct] = {}


def _repeated(unit: str, count: int) -> struct.Struct:
    """The struct of *count* consecutive *unit* records (cached)."""
    packer = _REPEATED.get((unit, count))
    if packer is None:
        packer = _REPEATED[unit, count] = struct.Struct("@" + unit[1:] * count)
    return packer


def _area(size: int) -> tuple[mmap.mmap, int]:
    """A private anonymous mapping of *size* bytes and its address.

    Private, not mmap's default shared mapping: a process forked after the
    buffers were made (``--workers``) gets its own copy of them.
    """
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return area, ctypes.addressof(ctypes.c_char.from_buffer(area))


class Batch:
    """
    Receive and send buffers for :data:`BATCH` datagrams, and the two calls.

    :meth:`recv` returns each datagram with its raw source address (the
    ``sockaddr`` bytes: a key for a cache of parsed addresses, and what
    :meth:`send` answers to) and its raw ancillary data.
    """

    def __init__(self, recvmmsg: Any, sendmmsg: Any) -> None:
        self._recvmmsg = recvmmsg
        self._sendmmsg = sendmmsg
        self._rx_data, rx_data = _area(BATCH * SLOT)
        self._tx_data, tx_data = _area(BATCH * SLOT)
        self._rx_names, names = _area(BATCH * _NAME)
        self._tx_names, tx_names = _area(BATCH * _NAME)
        self._rx_control, control = _area(BATCH * _CONTROL)
        self._rx_iov = (_IOVec * BATCH)()
        self._tx_iov = (_IOVec * BATCH)()
        rx = (_MMsgHdr * BATCH)()
        tx = (_MMsgHdr * BATCH)()
        for i in range(BATCH):
            self._rx_iov[i].base = rx_data + i * SLOT
            self._rx_iov[i].len = SLOT
            hdr = rx[i].hdr
            hdr.name, hdr.namelen = names + i * _NAME, _NAME
            hdr.iov, hdr.iovlen = ctypes.addressof(self._rx_iov[i]), 1
            hdr.control, hdr.controllen = control + i * _CONTROL, _CONTROL
            out = tx[i].hdr
            out.iov, out.iovlen = ctypes.addressof(self._tx_iov[i]), 1
        self._rx, self._tx = rx, tx
        self._tx_data_address, self._tx_names_address = tx_data, tx_names
        self._tx_iov_addresses = [ctypes.addressof(self._tx_iov[i]) for i in range(BATCH)]
        self._rx_address, self._tx_address = ctypes.addressof(rx), ctypes.addressof(tx)
        # The kernel overwrites namelen and controllen: restored from this copy.
        self._rx_view = memoryview(rx).cast("B")
        self._rx_pristine = bytes(self._rx_view)
        self._tx_view = memoryview(tx).cast("B")
        self._tx_iov_view = memoryview(self._tx_iov).cast("B")
        # What the first entries of the send vectors say now: every payload
        # (every address) of this size, for this many entries (-1: mixed).
        self._iov_size = self._iov_count = self._name_size = self._name_count = -1

    def recv(self, fd: int, limit: int = BATCH) -> list[tuple[bytes, bytes, bytes]]:
        """
        Up to *limit* datagrams waiting on *fd*, each ``(data, sockaddr,
        ancillary)``; an empty list when none is waiting.

        :raises OSError: for an error other than ``EAGAIN``/``EINTR`` (the
            caller decides which of them to ignore).
        """
        limit = min(limit, BATCH)
        got = self._recvmmsg(fd, self._rx_address, limit, socket.MSG_DONTWAIT, None)
        if got <= 0:
            if got < 0:
                code = ctypes.get_errno()
                if code not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                    raise OSError(code, "recvmmsg: " + errno.errorcode.get(code, str(code)))
            return []
        view = self._rx_view
        entries = _FIELDS.iter_unpack(view[: got * _ENTRY])
        data, names, control = self._rx_data, self._rx_names, self._rx_control
        out = [
            (data[at : at + size], names[name : name + namelen], control[ctl : ctl + controllen])
            for (namelen, controllen, size), (at, name, ctl) in zip(entries, _SLOTS, strict=False)
        ]
        view[: got * _ENTRY] = self._rx_pristine[: got * _ENTRY]
        return out

    def send(self, fd: int, replies: Sequence[tuple[Any, ...]]) -> tuple[int, int, int]:
        """
        Send each of *replies* (at most :data:`BATCH`, tuples of one length), its data
        first and its ``sockaddr`` last, from *fd*, in order; return (datagrams
        sent, bytes sent, datagrams that failed). A datagram the kernel refuses
        (``EAGAIN``, ``ENOBUFS``, ...) or longer than :data:`SLOT` (more than a
        datagram holds) is counted as failed and the rest still go.
        """
        if not replies:
            return 0, 0, 0
        columns = list(zip(*replies, strict=True))
        payloads, names = columns[0], columns[-1]
        sizes = list(map(len, payloads))
        oversize = 0
        if max(sizes) > SLOT:
            fit = [i for i, size in enumerate(sizes) if size <= SLOT]
            oversize = len(sizes) - len(fit)
            payloads = tuple(payloads[i] for i in fit)
            names = tuple(names[i] for i in fit)
            sizes = [sizes[i] for i in fit]
        count = len(payloads)
        if not count:
            return 0, 0, oversize
        # Payloads and addresses laid end to end; the vectors point into them,
        # written with one pack_into each, and not at all when they already
        # say the same (every payload, every address as long as last time).
        blob = b"".join(payloads)
        self._tx_data[: len(blob)] = blob
        name_blob = b"".join(names)
        self._tx_names[: len(name_blob)] = name_blob
        first = sizes[0]
        if len(blob) != first * count or set(sizes) != {first}:
            first = -1
        if first < 0 or first != self._iov_size or count > self._iov_count:
            bases = accumulate(sizes[:-1], initial=self._tx_data_address)
            _repeated(_IOV_FIELDS, count).pack_into(
                self._tx_iov_view, 0, *chain.from_iterable(zip(bases, sizes, strict=True))
            )
            self._iov_size, self._iov_count = first, count
        name_size = len(names[0])
        if len(name_blob) != name_size * count or set(map(len, names)) != {name_size}:
            name_size = -1
        if name_size < 0 or name_size != self._name_size or count > self._name_count:
            name_sizes = list(map(len, names))
            name_bases = accumulate(name_sizes[:-1], initial=self._tx_names_address)
            _repeated(_MSG_FIELDS, count).pack_into(
                self._tx_view,
                0,
                *chain.from_iterable(
                    zip(name_bases, name_sizes, self._tx_iov_addresses, *_TAIL, strict=False)
                ),
            )
            self._name_size, self._name_count = name_size, count
        sent = failed = nbytes = 0
        at = 0
        while at < count:
            done = self._sendmmsg(fd, self._tx_address + at * _ENTRY, count - at, 0)
            if done < 0:
                if ctypes.get_errno() == errno.EINTR:
                    continue
                failed += 1  # the datagram at `at` was refused: skip it
                at += 1
                continue
            nbytes += sum(sizes[at : at + done])
            sent += done
            at += done
        return sent, nbytes, failed + oversize


def _open(libc: Any) -> Batch | None:
    recvmmsg = getattr(libc, "recvmmsg", None)
    sendmmsg = getattr(libc, "sendmmsg", None)
    if recvmmsg is None or sendmmsg is None:
        return None
    recvmmsg.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    ]
    recvmmsg.restype = ctypes.c_int
    sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    sendmmsg.restype = ctypes.c_int
    return Batch(recvmmsg, sendmmsg)


_batch: list[Batch | None] = []


def batch() -> Batch | None:
    """The process's :class:`Batch`, or ``None`` where ``recvmmsg``/``sendmmsg`` are missing."""
    if not _batch:
        found = None
        if sys.platform.startswith("linux"):
            try:
                found = _open(ctypes.CDLL(None, use_errno=True))
            except (OSError, AttributeError):
                found = None
        _batch.append(found)
    return _batch[0]


_CMSG_HEADER = struct.Struct("@Nii")
_CMSG_ALIGN = ctypes.sizeof(ctypes.c_size_t)


def ancillary_items(raw: bytes) -> list[tuple[int, int, bytes]]:
    """The ``(level, type, data)`` messages in the raw ancillary data *raw* (as ``recvmsg``)."""
    items = []
    at, end, header = 0, len(raw), _CMSG_HEADER.size
    while at + header <= end:
        length, level, kind = _CMSG_HEADER.unpack_from(raw, at)
        if length < header:
            break
        items.append((level, kind, raw[at + header : at + length]))
        at += (length + _CMSG_ALIGN - 1) & ~(_CMSG_ALIGN - 1)
    return items
