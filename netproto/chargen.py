"""
The Character Generator Protocol (RFC 864), over TCP and UDP, server and client.

The stream is RFC 864's: the 95 printable ASCII characters (space to ``~``) as a
ring, lines of 72 characters ending in CRLF, each line starting one character
further along the ring than the one before, the first with ``!`` as in the
RFC's example; after 95 lines it repeats (:data:`PERIOD`, 7,030 bytes).
(xinetd's built-in leaves space and ``~`` out of its ring: it agrees for 22
lines, then drifts.)

TCP streams as fast as the peer reads, with flow control: the protocol is the
transport's push producer, so it writes only while the transport has room. A
peer that never reads costs one transport buffer (about 64 KiB), and the
``write_stall_timeout`` of the :class:`~netproto.limits.Limits` aborts it.
Whatever the peer sends is counted and dropped; its half-close does not stop
the stream (it may still be reading).

UDP amplifies by design: RFC 864 answers any datagram, even an empty one,
with up to 512 bytes. Here, by default, a reply is never larger than the
datagram asking for it (the first ``len(request)`` bytes of the next line or
lines, at most 512); ``rfc=True`` (``--chargen-rfc-udp``) answers every
datagram with one whole 74-byte line, as inetd does. Either way the source
rules and reply budgets of :class:`~netproto.limits.SourcePolicy` apply, as
for echo.

The clients, :func:`chargen_tcp` and :func:`chargen_udp`, return the bytes
received; :func:`check_stream` says whether bytes follow the RFC's pattern.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from netproto._service import (
    LimitedFactory,
    PolicedDatagramProtocol,
    ProtocolError,
    RefusedError,
    ServiceError,
    ServiceTimeoutError,
    UnreachableError,
    WatchedProtocol,
    tcp_exchange,
    udp_exchange,
)
from netproto._twisted import direct_writer, queued_bytes
from netproto.limits import DEFAULT_LIMITS, Limits
from netproto.util import format_host_port

__all__ = [
    "LINE_LENGTH",
    "MAX_UDP_REPLY",
    "PERIOD",
    "RING",
    "ChargenDatagramProtocol",
    "ChargenFactory",
    "ChargenProtocol",
    "ProtocolError",
    "RefusedError",
    "ServiceError",
    "ServiceTimeoutError",
    "UnreachableError",
    "chargen_line",
    "chargen_tcp",
    "chargen_udp",
    "check_stream",
]

RING = bytes(range(32, 127))
"""The 95 printable ASCII characters, space to ``~``: RFC 864's ring."""

LINE_LENGTH = 72
"""Characters on one line, before its CRLF."""

_LINE = LINE_LENGTH + 2
_RING2 = RING + RING

PERIOD = b"".join(_RING2[i : i + LINE_LENGTH] + b"\r\n" for i in range(1, len(RING) + 1))
"""
One whole period of the stream: 95 lines, 7,030 bytes; the stream repeats it.
The first line starts with ``!``, as RFC 864's example and every inetd's does.
"""

MAX_UDP_REPLY = 512
"""The largest UDP reply RFC 864 allows (``0`` to ``512`` characters)."""

# A block of whole periods a little above Twisted's 64 KiB transport buffer:
# one write per reactor turn fills it, and the stream stays continuous.
_BLOCK = PERIOD * 10
_PERIOD2 = PERIOD + PERIOD[:MAX_UDP_REPLY]
#: What a chargen connection "still owes": without end (see ChargenProtocol.pending).
_OWED = 1 << 62
_TURN = 64


def chargen_line(n: int) -> bytes:
    """Line *n* (from 0) of the stream: 72 characters and CRLF; line 0 starts with ``!``."""
    start = (n + 1) % len(RING)
    return _RING2[start : start + LINE_LENGTH] + b"\r\n"


def check_stream(data: bytes) -> bool:
    """
    Whether *data* is a piece of RFC 864's stream starting at the beginning of
    any line (as every TCP connection and every UDP reply of ours starts).
    """
    if not data:
        return True
    first = data.find(b"\r\n")
    line = data[: first if first >= 0 else LINE_LENGTH]
    start = RING.find(line[:1])
    if start < 0:
        return False
    offset = (start - 1) % len(RING) * _LINE
    whole = PERIOD * (len(data) // len(PERIOD) + 2)
    return whole[offset : offset + len(data)] == data


@implementer(IHalfCloseableProtocol)
class ChargenProtocol(WatchedProtocol):
    """One TCP chargen connection: the stream, written only while the transport has room."""

    factory: ChargenFactory
    _producing = True

    def connectionMade(self) -> None:
        super().connectionMade()
        transport: Any = self.transport
        transport.registerProducer(self, True)
        # On a socket transport, send at once while the kernel takes it.
        self._write = direct_writer(transport) or transport.write
        self._later: Any = None
        self.resumeProducing()

    def dataReceived(self, data: bytes) -> None:
        self._rx += len(data)

    def readConnectionLost(self) -> None:
        # The peer will send no more; it may still read: keep streaming.
        pass

    def writeConnectionLost(self) -> None:
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.stopProducing()
        super().connectionLost(reason)

    # IPushProducer: the transport pauses us when its buffer is full and
    # resumes us when it has drained; reading goes on (input is dropped).

    def pauseProducing(self) -> None:
        self._paused = True
        later, self._later = self._later, None
        if later is not None and later.active():
            later.cancel()

    def resumeProducing(self) -> None:
        self._paused = False
        self._produce()

    def _produce(self) -> None:
        self._later = None
        write = self._write
        block = _BLOCK
        # Write until the transport's buffer is full: it pauses us from inside
        # write(). A turn writes at most _TURN blocks, so one fast reader
        # cannot starve the other connections; a transport that never pauses
        # (a test double) gets one turn per reactor iteration, never a loop.
        for _ in range(_TURN):
            if self._paused or not self._producing:
                return
            write(block)
            self._tx += len(block)
        if not self._paused and self._producing:
            self._later = self.factory.reactor.callLater(0, self._produce)

    def stopProducing(self) -> None:
        self._paused = True
        self._producing = False
        later, self._later = self._later, None
        if later is not None and later.active():
            later.cancel()

    def pending(self) -> int | None:
        """
        What the stream still owes the peer: the bytes queued plus an endless
        rest, so the number falls whenever the peer reads (the write-stall
        deadline sees progress) and stands still when it does not.
        """
        return (queued_bytes(self.transport) or 0) + _OWED - self._tx


class ChargenFactory(LimitedFactory):
    """
    The TCP chargen service: a factory for :class:`ChargenProtocol` with the
    protections of *limits* (connection caps, the write-stall deadline).
    """

    protocol_class = ChargenProtocol
    service = "chargen/tcp"


class ChargenDatagramProtocol(PolicedDatagramProtocol):
    """
    The UDP chargen service: every datagram the source policy of *limits*
    admits is answered with the next line of the stream, cut to the
    request's length (at most :data:`MAX_UDP_REPLY`); with *rfc*, a whole
    74-byte line whatever the request. Datagrams from a port in
    *served_ports* are refused (the loop guard).
    """

    service = "chargen/udp"

    def __init__(
        self,
        reactor: Any,
        limits: Limits = DEFAULT_LIMITS,
        *,
        rfc: bool = False,
        served_ports: Set[int] | None = None,
    ) -> None:
        super().__init__(reactor, limits, served_ports=served_ports)
        self.rfc = rfc
        self._line = 0

    def reply(self, data: bytes) -> bytes:
        """The next line: cut to ``len(data)`` (at most 512), or whole with ``rfc``."""
        line = self._line
        self._line = line + 1 if line < len(RING) - 1 else 0
        start = line * _LINE
        size = _LINE if self.rfc else min(len(data), MAX_UDP_REPLY)
        return _PERIOD2[start : start + size]


def chargen_tcp(
    reactor: Any, host: str, port: int = 19, count: int = _LINE, *, timeout: float = 10.0
) -> Deferred[bytes]:
    """
    Read *count* bytes of the chargen stream at (*host*, *port*) over TCP, then
    close; fire with exactly those bytes. Fails with :class:`RefusedError`,
    :class:`UnreachableError`, :class:`ServiceTimeoutError` (fewer within
    *timeout* seconds, 0 for none) or :class:`ProtocolError` (the server
    closed before *count* bytes).
    """
    what = format_host_port(host, port)

    async def run() -> bytes:
        got = await tcp_exchange(
            reactor, host, port, None, expect=count, limit=count, timeout=timeout, what=what
        )
        if len(got) < count:
            raise ProtocolError(f"{what}: closed after {len(got)} of {count} bytes")
        return got[:count]

    return Deferred.fromCoroutine(run())


def chargen_udp(
    reactor: Any, host: str, port: int = 19, size: int = _LINE, *, timeout: float = 5.0
) -> Deferred[bytes]:
    """
    Send a datagram of *size* bytes to the chargen server at (*host*, *port*)
    and fire with the datagram that comes back (ours answer at most *size*
    bytes; an RFC server, one line or more). Fails like :func:`chargen_tcp`.
    """
    what = f"{format_host_port(host, port)} (udp)"

    async def run() -> bytes:
        return await udp_exchange(reactor, host, port, b" " * size, timeout=timeout, what=what)

    return Deferred.fromCoroutine(run())
