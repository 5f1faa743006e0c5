"""
The protocol adapters shared by the daytime and echo servers: a TCP factory
that applies :class:`~netproto.limits.ConnectionLimiter` and
:class:`~netproto.limits.ConnectionWatch`, a TCP protocol base the watch can
observe, and a UDP protocol base that applies
:class:`~netproto.limits.SourcePolicy`.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any, ClassVar

from twisted.internet.error import MessageLengthError
from twisted.internet.interfaces import IAddress, IPushProducer, ITransport
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from netproto.limits import (
    DEFAULT_LIMITS,
    ConnectionLimiter,
    ConnectionWatch,
    Counters,
    Limits,
    RefusalSummary,
    SourcePolicy,
    peer_key,
    periodic,
)


@implementer(IPushProducer)
class WatchedProtocol(Protocol):
    """
    A TCP protocol that its :class:`LimitedFactory` counts, watches for idle
    and stalled output, and can abort. Subclasses add ``len(data)`` to
    ``self._rx`` for every read (the only per-read cost), and register
    ``self`` as the transport's streaming producer when they need flow
    control: the transport then pauses and resumes us, and we pass it on.
    """

    factory: LimitedFactory
    transport: ITransport

    _peer: str | None = None
    _admitted = False
    _rx = 0
    _tx = 0
    _rx_flushed = 0
    _tx_flushed = 0
    _paused = False

    def connectionMade(self) -> None:
        factory = self.factory
        factory.counters.add("tcp_connections")
        factory.watch.add(self, factory.reactor.seconds())

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        factory = self.factory
        factory.watch.discard(self)
        if self._admitted:
            self._admitted = False
            factory.limiter.release(self._peer)
        self.flush_counters()

    def flush_counters(self) -> None:
        """Move the byte counts kept on the connection into the factory's counters."""
        counters = self.factory.counters
        if self._rx != self._rx_flushed:
            counters.add("tcp_bytes_received", self._rx - self._rx_flushed)
            self._rx_flushed = self._rx
        if self._tx != self._tx_flushed:
            counters.add("tcp_bytes_sent", self._tx - self._tx_flushed)
            self._tx_flushed = self._tx

    # What ConnectionWatch looks at.

    def activity(self) -> int:
        """Bytes received so far: changes whenever the peer sends."""
        return self._rx

    def pending(self) -> int | None:
        """Bytes queued in the transport for the peer, if the transport says."""
        t: Any = self.transport
        try:
            return int(len(t.dataBuffer) - t.offset + t._tempDataLen)
        except (AttributeError, TypeError):
            return None

    def write_blocked(self) -> bool:
        """Whether the transport has paused us because its buffer is full."""
        return self._paused

    def abort(self, reason: str) -> None:
        """Abort the connection at once, dropping what is queued."""
        t: Any = self.transport
        abort = getattr(t, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            t.loseConnection()

    # IPushProducer: the transport's flow control, passed on.

    def pauseProducing(self) -> None:
        self._paused = True
        self.transport.pauseProducing()  # type: ignore[attr-defined]

    def resumeProducing(self) -> None:
        self._paused = False
        self.transport.resumeProducing()  # type: ignore[attr-defined]

    def stopProducing(self) -> None:
        self._paused = False


class Refused(Protocol):
    """A connection over a cap: aborted as soon as it is made, nothing read or written."""

    def connectionMade(self) -> None:
        self.transport.abortConnection()  # type: ignore[union-attr]


class LimitedFactory(Factory):
    """
    A TCP factory that refuses connections over the total and per-peer caps
    of its :class:`~netproto.limits.Limits` (a :class:`Refused` protocol
    aborts them before any byte is read or written), sweeps its connections
    for idle and write-stall deadlines, and logs refusal summaries.
    ``counters`` holds everything it counted.
    """

    protocol_class: ClassVar[type[WatchedProtocol]] = WatchedProtocol
    service: ClassVar[str] = "tcp"
    log = Logger()

    def __init__(self, reactor: Any, limits: Limits = DEFAULT_LIMITS) -> None:
        self.reactor = reactor
        self.limits = limits
        self.counters = Counters()
        self.limiter = ConnectionLimiter(limits)
        self.watch = ConnectionWatch(limits, self.counters)
        self.summary = RefusalSummary(self.service, self.counters)
        self._loops: list[Any] = []

    def startFactory(self) -> None:
        self._loops = [
            loop
            for loop in (
                periodic(self.reactor, self.limits.sweep_period(), self.sweep),
                periodic(self.reactor, self.limits.summary_interval, self.summary.tick),
            )
            if loop is not None
        ]

    def stopFactory(self) -> None:
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []

    def buildProtocol(self, addr: IAddress) -> Protocol:  # type: ignore[override]
        host = getattr(addr, "host", None)
        # A dotted quad is already canonical; anything else is normalised.
        peer = host if type(host) is str and ":" not in host else peer_key(addr)
        refusal = self.limiter.admit(peer)
        if refusal is not None:
            self.counters.add(refusal)
            # Not None: wrapping factories (TLS for ssl: endpoints) would wrap
            # None and fail in connectionMade, taking the listening port down.
            return Refused()
        protocol = self.protocol_class()
        protocol.factory = self
        protocol._peer = peer
        protocol._admitted = True
        return protocol

    def sweep(self) -> None:
        """Abort connections past a deadline and bring byte counters up to date."""
        for conn in self.watch.connections():
            conn.flush_counters()  # type: ignore[attr-defined]
        self.watch.sweep(self.reactor.seconds())


_SEND_ERRORS = (OSError, MessageLengthError)


class PolicedDatagramProtocol(DatagramProtocol):
    """
    A UDP protocol that answers each admitted datagram with
    :meth:`reply` ``(data)`` and drops the others silently, counted.

    Replies go straight to the port's socket when it has one (the address
    came from ``recvfrom``, so Twisted's per-write address validation is
    pure overhead); a full send buffer (``EAGAIN``, ``ENOBUFS``) or any other
    send error is counted as ``udp_send_errors``, never raised.
    """

    service: ClassVar[str] = "udp"
    log = Logger()

    def __init__(
        self,
        reactor: Any,
        limits: Limits = DEFAULT_LIMITS,
        *,
        served_ports: Set[int] | None = None,
    ) -> None:
        self.reactor = reactor
        self.limits = limits
        self.counters = Counters()
        self.policy = SourcePolicy(limits, self.counters, served_ports)
        self.summary = RefusalSummary(self.service, self.counters)
        self._socket: Any = None
        self._loop: Any = None

    @property
    def served_ports(self) -> Set[int]:
        """The live set of UDP ports this process serves (source ports refused)."""
        return self.policy.served_ports

    def startProtocol(self) -> None:
        sock = getattr(self.transport, "socket", None)
        self._socket = sock if callable(getattr(sock, "sendto", None)) else None
        self._loop = periodic(self.reactor, self.limits.summary_interval, self._tick)

    def stopProtocol(self) -> None:
        self._socket = None
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _tick(self) -> None:
        self.policy.prune(self.reactor.seconds())
        self.summary.tick()

    def reply(self, data: bytes) -> bytes:
        """The answer to *data*."""
        raise NotImplementedError

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        values = self.counters._values
        values["udp_datagrams_received"] += 1
        values["udp_bytes_received"] += len(datagram)
        refusal = self.policy.check(addr[0], addr[1], self.reactor.seconds())
        if refusal is not None:
            values[refusal] += 1
            return
        answer = self.reply(datagram)
        try:
            sock = self._socket
            if sock is not None:
                sock.sendto(answer, addr)
            else:
                self.transport.write(answer, addr)  # type: ignore[union-attr]
        except _SEND_ERRORS:  # EAGAIN, ENOBUFS, ECONNREFUSED, EMSGSIZE, ...
            values["udp_send_errors"] += 1
            return
        values["udp_replies_sent"] += 1
        values["udp_bytes_sent"] += len(answer)
