"""
The Discard Protocol (RFC 863), over TCP and UDP, server and client.

The server reads and drops: every byte is counted (``tcp_bytes_received``,
``udp_bytes_received``), none is kept or answered. Over TCP the connection is
watched for idle as echo's is (``idle_timeout``); reading never buffers, so a
fast sender costs one receive buffer. Over UDP nothing is ever sent, so no
source rule or reply budget is needed; the ``--allow``/``--deny`` rules
(:mod:`netproto.access`) still apply and are counted.

The clients, :func:`discard_tcp` and :func:`discard_udp`, send bytes and return
how many were sent once the server took them (TCP: it closed after our
half-close without a byte back; UDP: no ICMP port unreachable came back
within a short grace), or raise a :class:`ServiceError` subclass.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
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
    udp_send,
)
from netproto.util import format_host_port

__all__ = [
    "DiscardDatagramProtocol",
    "DiscardFactory",
    "DiscardProtocol",
    "ProtocolError",
    "RefusedError",
    "ServiceError",
    "ServiceTimeoutError",
    "UnreachableError",
    "discard_tcp",
    "discard_udp",
]

_READ_SIZE = 1 << 18


@implementer(IHalfCloseableProtocol)
class DiscardProtocol(WatchedProtocol):
    """One TCP discard connection: count what arrives; close when the peer has sent all."""

    factory: DiscardFactory

    def connectionMade(self) -> None:
        super().connectionMade()
        # Twisted reads bufferSize bytes per recv (64 KiB); nothing is kept, so
        # larger reads cost no memory beyond the one read, and halve the turns.
        transport: Any = self.transport
        if isinstance(getattr(transport, "bufferSize", None), int):
            transport.bufferSize = _READ_SIZE

    def dataReceived(self, data: bytes) -> None:
        # The hot path: one count, which also tells the idle sweep we are busy.
        self._rx += len(data)

    def readConnectionLost(self) -> None:
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        self.transport.loseConnection()


class DiscardFactory(LimitedFactory):
    """
    The TCP discard service: a factory for :class:`DiscardProtocol` with the
    protections of *limits* (connection caps, the idle deadline).
    """

    protocol_class = DiscardProtocol
    service = "discard/tcp"


class DiscardDatagramProtocol(PolicedDatagramProtocol):
    """
    The UDP discard service: every datagram is counted and dropped. Nothing is
    ever sent, so the source rules and budgets of *limits* have nothing to
    protect; the access rules (``access``) are applied and their refusals counted.
    """

    service = "discard/udp"

    def answer(self, datagram: bytes, addr: Any) -> bytes | None:
        """
        Count *datagram* and drop it: ``None``, always. This is the one
        per-datagram hook, so datagrams a port reads in batches (``recvmmsg``)
        are dropped here too, never answered.
        """
        values = self.counters.values
        values["udp_datagrams_received"] += 1
        values["udp_bytes_received"] += len(datagram)
        access = self.access
        if access is not None:
            refusal = access.admit_udp(addr[0])
            if refusal is not None:
                values[refusal] += 1
        return None

    def reply(self, data: bytes) -> bytes:
        """Never used: discard answers nothing."""
        return b""


def discard_tcp(
    reactor: Any, host: str, port: int = 9, data: bytes = b"", *, timeout: float = 10.0
) -> Deferred[int]:
    """
    Send *data* to the discard server at (*host*, *port*) over TCP, half-close,
    and fire with ``len(data)`` once the server has closed without sending a
    byte. Fails with :class:`RefusedError`, :class:`UnreachableError`,
    :class:`ServiceTimeoutError` (not done within *timeout* seconds, 0 for
    none) or :class:`ProtocolError` (the server sent something back).
    """
    what = format_host_port(host, port)

    async def run() -> int:
        await tcp_exchange(
            reactor, host, port, data, expect=None, limit=0, timeout=timeout, what=what
        )
        return len(data)

    return Deferred.fromCoroutine(run())


def discard_udp(
    reactor: Any, host: str, port: int = 9, data: bytes = b"", *, grace: float = 0.5
) -> Deferred[int]:
    """
    Send *data* in one UDP datagram to the discard server at (*host*, *port*);
    fire with ``len(data)`` if no ICMP port unreachable (:class:`RefusedError`)
    and no answer (:class:`ProtocolError`) came back within *grace* seconds.
    UDP says nothing more: a datagram dropped on the way is not seen.
    """
    what = f"{format_host_port(host, port)} (udp)"

    async def run() -> int:
        await udp_send(reactor, host, port, data, grace=grace, what=what)
        return len(data)

    return Deferred.fromCoroutine(run())
