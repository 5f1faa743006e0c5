"""
The Echo Protocol (RFC 862), over TCP and UDP, server and client.

TCP: every byte received is sent back, in order, with

- **flow control**: the connection is the transport's streaming producer, so
  when our send buffer fills (the peer does not read) the transport stops
  reading from the peer; a client that writes and never reads costs at most
  one buffer of memory, and the write-stall deadline of the
  :class:`~netproto.limits.Limits` then aborts it;
- **half-close**: after the client's ``shutdown(SHUT_WR)``, every byte still
  owed is sent, then the server closes.

UDP: every admitted datagram, 0 to 65,507 bytes over IPv4 and 65,527 over
IPv6, is answered with one identical datagram (listen with
``maxPacketSize=65535``, Twisted's default of 8192 truncates). The source
rules and reply budgets of :class:`~netproto.limits.SourcePolicy` stop
reflection and loops; a full send buffer is counted, not raised.

The clients, :func:`echo_tcp` and :func:`echo_udp`, send bytes, check that
the same bytes came back and return them, or raise a :class:`ServiceError`
subclass (:class:`RefusedError`, :class:`ServiceTimeoutError`,
:class:`MismatchError`, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from netproto._service import (
    BufferBudget,
    Datagram,
    LimitedFactory,
    MismatchError,
    PolicedDatagramProtocol,
    ProtocolError,
    RefusedError,
    ServiceError,
    ServiceTimeoutError,
    Trimmer,
    UnreachableError,
    WatchedProtocol,
    tcp_exchange,
    udp_exchange,
)
from netproto._twisted import direct_writer, echo_directly, queued_bytes
from netproto.limits import DEFAULT_LIMITS, Limits
from netproto.util import format_host_port

__all__ = [
    "MAX_UDP_IPV4",
    "MAX_UDP_IPV6",
    "EchoDatagramProtocol",
    "EchoFactory",
    "EchoProtocol",
    "MismatchError",
    "ProtocolError",
    "RefusedError",
    "ServiceError",
    "ServiceTimeoutError",
    "UnreachableError",
    "echo_tcp",
    "echo_udp",
]

_LARGE_READ = 1 << 18
"""Bytes one TCP read takes while nothing is queued for the peer nor held by the
service's buffer budget (otherwise ``write_high_water``): a peer that keeps up
streams in large reads; one that stops holds at most one of them."""

MAX_UDP_IPV4 = 65507
"""The largest UDP payload over IPv4 (65,535 - 20 IP - 8 UDP header bytes)."""

MAX_UDP_IPV6 = 65527
"""The largest UDP payload over IPv6 without jumbograms (65,535 - 8)."""


@implementer(IHalfCloseableProtocol)
class EchoProtocol(WatchedProtocol):
    """One TCP echo connection, with flow control and half-close."""

    factory: EchoFactory
    _undo: Callable[[], None] | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        transport: Any = self.transport
        # Echo forwards at once: do not let Nagle hold a reply back.
        no_delay = getattr(transport, "setTcpNoDelay", None)
        if no_delay is not None:
            try:
                no_delay(True)
            except OSError:
                pass
        high_water = self.factory.limits.write_high_water
        if high_water and hasattr(transport, "bufferSize"):
            # Twisted pauses us past bufferSize queued (and reads that much at
            # once): what one non-reading peer may hold stays near it.
            transport.bufferSize = high_water
        elif getattr(transport, "bufferSize", None) == 65536:
            # No high-water mark (--write-high-water=0): fewer, larger reads.
            transport.bufferSize = 1 << 17
        transport.registerProducer(self, True)
        self.factory.budget.admit(self)
        self._write = transport.write
        # Twisted's TCP transport: reads echoed in one call; others: sent at
        # once when nothing is queued; anything else: dataReceived.
        self._undo = echo_directly(transport, self, _LARGE_READ, self.factory.budget)
        if self._undo is not None:
            return
        write_now = direct_writer(transport)
        if write_now is not None:
            self._write_now = write_now
            self.dataReceived = self._dataReceivedDirect  # type: ignore[method-assign]

    def dataReceived(self, data: bytes) -> None:
        # The hot path: one count (it also tells the sweep we are not idle),
        # the clock read that dates it, and one write; no timer, no log.
        self._rx += len(data)
        self._read_at = self._seconds()
        self._write(data)

    def _dataReceivedDirect(self, data: bytes) -> None:
        # The same on a socket transport: sent at once when nothing is queued.
        self._rx += len(data)
        self._read_at = self._seconds()
        self._write_now(data)

    def readConnectionLost(self) -> None:
        # The client shut its side: send what is owed, then close. The
        # producer must go first, or a transport that drains while we are
        # paused resumes us instead of closing.
        self.transport.unregisterProducer()  # type: ignore[attr-defined]
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        self.transport.loseConnection()

    def flush_counters(self) -> None:
        self._tx = self._rx
        super().flush_counters()

    # The service's buffer budget (see netproto._service.BufferBudget).

    def pauseProducing(self) -> None:
        super().pauseProducing()
        queued = queued_bytes(self.transport)
        if queued is None:  # a transport that does not say: assume its whole buffer
            queued = 2 * (self.factory.limits.write_high_water or 65536)
        self.factory.budget.charge(self, queued)

    def resumeProducing(self) -> None:
        if self.factory.budget.refund(self):
            super().resumeProducing()
        else:
            self._paused = False  # drained, but the service is over its budget

    def hold_reading(self) -> None:
        """Stop reading for the budget (the transport may still be writing)."""
        self.transport.pauseProducing()  # type: ignore[attr-defined]

    def release_reading(self) -> None:
        """The budget drained: read again unless our own output is full."""
        if not self._paused:
            self.transport.resumeProducing()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._undo is not None:
            self._undo()  # the transport's own doRead back: no cycle through it
            self._undo = None
        self.factory.budget.forget(self)
        super().connectionLost(reason)
        # Break the cycles the fast path made (self.dataReceived is a bound
        # method of self; the writers hold the transport and its queue):
        # without this, each lost connection's buffers waited for a full
        # garbage collection, which an idle server may not run for hours.
        self.__dict__.pop("dataReceived", None)
        self.__dict__.pop("_write", None)
        self.__dict__.pop("_write_now", None)


class EchoFactory(LimitedFactory):
    """
    The TCP echo service: a factory for :class:`EchoProtocol` with the
    protections of *limits*, deadlines measured on *reactor*.
    """

    protocol_class = EchoProtocol
    service = "echo/tcp"

    def __init__(self, reactor: Any, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(reactor, limits)
        self.budget = BufferBudget(limits.buffer_budget, self.watch.connections)
        """Bytes queued for all the service's peers (``buffer_budget``)."""
        self.trimmer = Trimmer()
        """Gives the queues' memory back once an attack's peers are gone."""

    def sweep(self) -> None:
        super().sweep()
        self.trimmer.observe(len(self.watch), self.budget.used)


class EchoDatagramProtocol(PolicedDatagramProtocol):
    """
    The UDP echo service: every datagram the source policy of *limits* admits
    is answered with an identical datagram. Datagrams from a port in
    *served_ports* (a live set the caller keeps filled with the UDP ports this
    process serves) are refused, so two of our services never answer each
    other.
    """

    service = "echo/udp"

    def reply(self, data: bytes) -> bytes:
        """The datagram itself."""
        return data

    def replies(self, admitted: list[Datagram]) -> list[Datagram]:
        """Each datagram itself, to where it came from: *admitted* as it is."""
        if type(self).reply is not EchoDatagramProtocol.reply:
            return super().replies(admitted)
        return admitted


def _verify(sent: bytes, got: bytes, what: str) -> bytes:
    if got == sent:
        return got
    if len(got) != len(sent):
        raise MismatchError(f"{what}: sent {len(sent)} bytes, {len(got)} came back")
    first = next(i for i, (a, b) in enumerate(zip(sent, got, strict=True)) if a != b)
    raise MismatchError(f"{what}: {len(sent)} bytes came back, differing from byte {first}")


def echo_tcp(
    reactor: Any, host: str, port: int = 7, data: bytes = b"", *, timeout: float = 10.0
) -> Deferred[bytes]:
    """
    Send *data* to the echo server at (*host*, *port*) over TCP, half-close,
    and fire with the bytes echoed once as many came back as were sent,
    after checking they are the same. Fails with :class:`RefusedError`,
    :class:`UnreachableError`, :class:`ServiceTimeoutError` (not all back within
    *timeout* seconds, 0 for none) or :class:`MismatchError` (other bytes, or
    the server closed early).
    """
    what = format_host_port(host, port)

    async def run() -> bytes:
        got = await tcp_exchange(
            reactor,
            host,
            port,
            data,
            expect=len(data),
            limit=len(data),
            timeout=timeout,
            what=what,
        )
        return _verify(data, got, what)

    return Deferred.fromCoroutine(run())


def echo_udp(
    reactor: Any, host: str, port: int = 7, data: bytes = b"", *, timeout: float = 5.0
) -> Deferred[bytes]:
    """
    Send *data* (at most 65,507 bytes over IPv4, 65,527 over IPv6) in one UDP
    datagram to the echo server at (*host*, *port*) and fire with the
    datagram that comes back, after checking it is the same. Fails like
    :func:`echo_tcp`; a datagram too large to send is an
    :class:`UnreachableError`.
    """
    what = f"{format_host_port(host, port)} (udp)"

    async def run() -> bytes:
        got = await udp_exchange(reactor, host, port, data, timeout=timeout, what=what)
        return _verify(data, got, what)

    return Deferred.fromCoroutine(run())
