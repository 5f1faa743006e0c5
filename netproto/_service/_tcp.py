"""
The TCP side of every service: a factory that applies
:class:`~netproto.limits.ConnectionLimiter` and
:class:`~netproto.limits.ConnectionWatch`, and a protocol base the watch can
observe and abort.
"""

from __future__ import annotations

from typing import Any, ClassVar

from twisted.internet.interfaces import IAddress, IPushProducer, ITransport
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from netproto._twisted import abort_now, queued_bytes
from netproto.access import AccessControl
from netproto.limits import (
    DEFAULT_LIMITS,
    ConnectionLimiter,
    ConnectionWatch,
    Counters,
    Limits,
    RefusalSummary,
    peer_key,
    periodic,
)

__all__ = ["LimitedFactory", "Refused", "WatchedProtocol"]


@implementer(IPushProducer)
class WatchedProtocol(Protocol):
    """
    A TCP protocol that its :class:`LimitedFactory` counts, watches for idle
    and stalled output, and can abort. Subclasses add ``len(data)`` to
    ``self._rx`` for every read (the only per-read cost), and register
    ``self`` as the transport's streaming producer when they need flow
    control: the transport then pauses and resumes us, and we pass it on.
    A subclass that reads also sets ``self._read_at = self._seconds()`` on
    every read, so the idle deadline counts from the last byte, not from the
    sweep that noticed it.
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
    _read_at: float | None = None
    _blocked_at: float | None = None

    def connectionMade(self) -> None:
        factory = self.factory
        factory.counters.add("tcp_connections")
        self._seconds = factory.reactor.seconds
        factory.watch.add(self, self._seconds())

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
        return queued_bytes(self.transport)

    def write_blocked(self) -> bool:
        """Whether the transport has paused us because its buffer is full."""
        return self._paused

    def active_at(self) -> float | None:
        """When the peer last sent a byte or our output last drained, if known."""
        return self._read_at

    def blocked_at(self) -> float | None:
        """When the transport paused us (output full), while it is paused."""
        return self._blocked_at if self._paused else None

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
        if not self._paused:
            self._blocked_at = self._seconds()
        self._paused = True
        self.transport.pauseProducing()  # type: ignore[attr-defined]

    def resumeProducing(self) -> None:
        self._paused = False
        self._read_at = self._seconds()  # the output drained: activity
        self.transport.resumeProducing()  # type: ignore[attr-defined]

    def stopProducing(self) -> None:
        self._paused = False


class Refused(Protocol):
    """A connection over a cap: aborted as soon as it is made, nothing read or written."""

    def connectionMade(self) -> None:
        # Closed before the port accepts the next one: refusals hold no fd.
        abort_now(self.transport)


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
    #: Who may connect (:mod:`netproto.access`); ``None``: everyone, no rate cap.
    access: AccessControl | None = None
    noisy = False
    """No ``Starting factory <... at 0x...>`` lines: the plugin logs what it serves."""

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
        limits = self.limits
        if type(host) is str and ":" not in host and limits.peer_prefix_v4 >= 32:
            peer: str | None = host
        else:
            peer = peer_key(addr, limits.peer_prefix_v4, limits.peer_prefix_v6)
        access = self.access
        refusal = None
        if access is not None:
            # Access rules judge the address itself, not the peer's prefix.
            source = host if type(host) is str and ":" not in host else peer_key(addr)
            refusal = access.admit_tcp(source, self.reactor.seconds())
        if refusal is None:
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
