"""
The TCP side of the services that answer once and close (time, qotd): a
protocol that writes its factory's answer on connection and closes, reading
nothing, and the factory base that says what the answer is.
"""

from __future__ import annotations

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from netproto._service._tcp import LimitedFactory, WatchedProtocol
from netproto._twisted import write_and_close

__all__ = ["AnswerFactory", "AnswerProtocol"]


class AnswerProtocol(WatchedProtocol):
    """
    One connection: write ``factory.answer()``, close, read nothing. Counted
    against the connection caps but not watched: the answer fits in a fresh
    socket's send buffer, so the connection closes at once whatever the peer does.
    """

    factory: AnswerFactory

    def connectionMade(self) -> None:
        factory = self.factory
        values = factory.counters.values
        answer = factory.answer()
        values["tcp_connections"] += 1
        values["tcp_bytes_sent"] += len(answer)
        write_and_close(self.transport, answer)

    def dataReceived(self, data: bytes) -> None:
        # Discarded; after the close the transport stops reading anyway.
        self._rx += len(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._admitted:
            self._admitted = False
            self.factory.limiter.release(self._peer)
        if self._rx:
            self.factory.counters.add("tcp_bytes_received", self._rx)


class AnswerFactory(LimitedFactory):
    """A factory of :class:`AnswerProtocol`: subclasses say what :meth:`answer` is."""

    protocol_class = AnswerProtocol

    def answer(self) -> bytes:
        """The bytes one connection gets."""
        raise NotImplementedError
