"""
The UDP side of every service: a datagram protocol base that applies
:class:`~netproto.limits.SourcePolicy` to each datagram and answers the
admitted ones.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from typing import Any, ClassVar

from twisted.internet.error import MessageLengthError
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from netproto.access import AccessControl
from netproto.limits import (
    DEFAULT_LIMITS,
    Counters,
    Limits,
    RefusalSummary,
    SourcePolicy,
    periodic,
)

__all__ = ["Datagram", "PolicedDatagramProtocol"]

Datagram = tuple[bytes, Any, Any]
"""``(data, addr, key)``: a datagram and its source as a port reads it in a batch
(*key*: the port's own handle on the source), or the same for a reply."""

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
    #: Who may be answered (:mod:`netproto.access`); ``None``: everyone.
    access: AccessControl | None = None
    noisy = False
    """No ``Starting protocol <... at 0x...>`` lines: the plugin logs what it serves."""

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

    def answer(self, datagram: bytes, addr: Any) -> bytes | None:
        """
        The answer to *datagram* from *addr*, or ``None`` (refused, counted):
        :meth:`answer_batch` for one datagram.
        """
        answered = self._answer_all([(datagram, addr, None)])
        return answered[0][0] if answered else None

    def answer_batch(self, datagrams: list[Datagram]) -> list[Datagram]:
        """
        The ``(reply, addr, key)`` of each ``(datagram, addr, key)`` answered,
        in order (*key*: the port's handle on the source; a batching port
        sends the replies itself, with ``sendmmsg``, and reports them to
        :meth:`count_sent`). Every datagram is counted, then judged by the
        access rules and the source policy (one clock reading for the batch),
        then answered with :meth:`replies`. One datagram, through
        :meth:`answer`, takes the same path; a subclass with an
        :meth:`answer` of its own gets each datagram through it instead.
        """
        if type(self).answer is not PolicedDatagramProtocol.answer:
            return self._each(datagrams, lambda data, addr: self.answer(data, addr))
        return self._answer_all(datagrams)

    def _answer_all(self, datagrams: list[Datagram]) -> list[Datagram]:
        values = self.counters.values
        values["udp_datagrams_received"] += len(datagrams)
        values["udp_bytes_received"] += sum([len(d[0]) for d in datagrams])
        access = self.access
        if access is not None:
            admitted = []
            for datagram in datagrams:
                refusal = access.admit_udp(datagram[1][0])
                if refusal is None:
                    admitted.append(datagram)
                else:
                    values[refusal] += 1
            datagrams = admitted
        return self.replies(self.policy.admit(datagrams, self.reactor.seconds(), values))

    def replies(self, admitted: list[Datagram]) -> list[Datagram]:
        """``(reply(datagram), addr, key)`` for each admitted ``(datagram, addr, key)``."""
        reply = self.reply
        return self._each(admitted, lambda data, addr: reply(data))

    def _each(
        self, datagrams: list[Datagram], make: Callable[[bytes, Any], bytes | None]
    ) -> list[Datagram]:
        # One datagram whose answer raises is dropped (logged), not the batch.
        out = []
        for data, addr, key in datagrams:
            try:
                answer = make(data, addr)
            except Exception:
                self.log.failure("answering a datagram raised; datagram dropped")
                continue
            if answer is not None:
                out.append((answer, addr, key))
        return out

    def count_sent(self, replies: int, nbytes: int, errors: int) -> None:
        """Count answers a batching port sent (*replies*, *nbytes*) or failed to send."""
        values = self.counters.values
        values["udp_replies_sent"] += replies
        values["udp_bytes_sent"] += nbytes
        if errors:
            values["udp_send_errors"] += errors

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        answer = self.answer(datagram, addr)
        if answer is None:
            return
        values = self.counters.values
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
