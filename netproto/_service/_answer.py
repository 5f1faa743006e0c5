"""
The TCP side of the services that answer once and close (daytime, time,
qotd): a protocol that writes its factory's answer on connection and closes,
reading nothing; the factory base that says what the answer is, and that
answers a connection on the socket the listener accepted, before any
transport is made for it (:meth:`AnswerFactory.answer_accepted`).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from netproto._service._tcp import LimitedFactory, WatchedProtocol
from netproto._twisted import write_and_close

__all__ = ["AnswerFactory", "AnswerProtocol"]

_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on with a zero timeout: close sends a reset, as abortConnection does."""


class AnswerProtocol(WatchedProtocol):
    """
    One connection: write ``factory.answer()``, close, read nothing. Counted
    against the connection caps but not watched: the answer fits in a fresh
    socket's send buffer, so the connection closes at once whatever the peer does.
    """

    factory: AnswerFactory

    #: What is left to write of an answer begun on the bare socket, if any.
    _rest: bytes | None = None

    def connectionMade(self) -> None:
        if self._rest is not None:  # answered and counted; what the socket did not take
            write_and_close(self.transport, self._rest)
            return
        write_and_close(self.transport, self.factory.counted_answer())

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

    def counted_answer(self) -> bytes:
        """:meth:`answer` for one admitted connection, counted as a connection and its bytes."""
        answer = self.answer()
        values = self.counters.values
        values["tcp_connections"] += 1
        values["tcp_bytes_sent"] += len(answer)
        return answer

    def answer_accepted(self, skt: socket.socket, address: Any) -> AnswerProtocol | None:
        """
        A connection the listener just accepted, as the bare socket and the
        peer's address: admitted or refused as :meth:`buildProtocol` judges
        it, counted as a connection made through a transport is, then
        answered and closed (a refused one reset) on the socket itself,
        without a transport, a protocol's turn or a reactor registration.
        Returns ``None``, or, when the socket did not take the whole answer
        at once, the protocol that writes the rest through a transport.
        """
        protocol = self.buildProtocol(address)
        if not isinstance(protocol, AnswerProtocol):  # refused, and counted so
            try:
                skt.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            finally:
                skt.close()
            return None
        answer = self.counted_answer()
        try:
            sent = skt.send(answer, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError:  # the peer is gone already (reset): nothing to say to it
            sent = len(answer)
        if sent < len(answer):
            protocol._rest = answer[sent:]
            return protocol
        try:
            # The FIN after the answer first, as a transport closes: a bare
            # close with the peer's unread bytes in the socket would send a
            # reset, which can overtake the answer.
            skt.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        skt.close()
        protocol._admitted = False
        self.limiter.release(protocol._peer)
        return None
