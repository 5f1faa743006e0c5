"""
What the daytime and echo clients share: their errors, name resolution, one
TCP exchange and one UDP exchange, each under a single deadline.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Coroutine
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.error import (
    ConnectError,
    ConnectingCancelledError,
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
    InvalidAddressError,
    MessageLengthError,
    TCPTimedOutError,
)
from twisted.internet.error import TimeoutError as UserTimeoutError
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import DatagramProtocol, Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from netproto.lookup import DEFAULT_TIMEOUT, InvalidLookupError, Lookup, NameLookupError

__all__ = [
    "MismatchError",
    "ProtocolError",
    "RefusedError",
    "ServiceError",
    "ServiceTimeoutError",
    "UnreachableError",
    "connect_reason",
    "resolve",
    "tcp_exchange",
    "udp_exchange",
    "udp_send",
]

MAX_UDP = 65535


class ServiceError(Exception):
    """A client operation failed; the message says why in one line."""


class RefusedError(ServiceError):
    """The server refused: TCP connection refused, or ICMP port unreachable for UDP."""


class UnreachableError(ServiceError):
    """The server could not be reached: unknown name, no route, connection failed."""


class ServiceTimeoutError(ServiceError):
    """No complete answer came before the deadline."""


class ProtocolError(ServiceError):
    """The server answered, but not as the protocol says (too long, cut short)."""


class MismatchError(ProtocolError):
    """An echo server sent back bytes other than those sent."""


async def resolve(reactor: Any, host: str, timeout: float) -> tuple[str, int]:
    """
    The address to reach *host* (a literal or a name) at, and its address
    family, through :mod:`netproto.lookup` (the system's resolver, in the
    reactor's thread pool): the first address, IPv4 before IPv6. Text that
    looks like an address but is not one is refused, never sent to a resolver.
    """
    try:
        address = await Lookup(reactor, timeout=timeout or DEFAULT_TIMEOUT).resolve_ip(host)
    except InvalidLookupError as e:
        # Nothing was looked up: say what is wrong with the text, not "cannot resolve".
        raise UnreachableError(str(e)) from e
    except NameLookupError as e:
        # The lookup's error stays the cause: what kind of failure it was.
        raise UnreachableError(f"cannot resolve {e}") from e
    return str(address), socket.AF_INET6 if address.version == 6 else socket.AF_INET


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _timeout(what: str, timeout: float) -> Any:
    def convert(result: object, _timeout: float) -> Failure:
        return Failure(ServiceTimeoutError(f"{what}: no answer within {timeout:g} s"))

    return convert


@implementer(IHalfCloseableProtocol)
class _TCPExchange(Protocol):
    """
    Send *payload* (if any), half-close, and collect what comes back: until
    at least *expect* bytes arrived, or until the server closes when *expect*
    is None, in which case more than *limit* bytes is a protocol error.
    """

    def __init__(self, payload: bytes | None, expect: int | None, limit: int) -> None:
        self.payload = payload
        self.expect = expect
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.done: Deferred[bytes] = Deferred(lambda d: self._abort())
        self.what = "server"

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def connectionMade(self) -> None:
        if self.payload is not None:
            if self.payload:
                self.transport.write(self.payload)  # type: ignore[union-attr]
            self.transport.loseWriteConnection()  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self.chunks.append(data)
        self.size += len(data)
        if self.expect is not None:
            if self.size >= self.expect:
                # All that is owed (or more, which the caller sees) came back.
                self._finish(b"".join(self.chunks))
                self.transport.loseConnection()  # type: ignore[union-attr]
        elif self.size > self.limit:
            self._finish(Failure(ProtocolError(f"{self.what}: more than {self.limit} bytes")))
            self._abort()

    def readConnectionLost(self) -> None:
        self.transport.loseConnection()  # type: ignore[union-attr]

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.size and self.expect != 0 and not reason.check(ConnectionDone):
            why = reason.getErrorMessage()
            lost = ProtocolError(f"{self.what}: connection lost before any answer ({why})")
            self._finish(Failure(lost))
        self._finish(b"".join(self.chunks))

    def _finish(self, result: bytes | Failure) -> None:
        if not self.done.called:
            self.done.callback(result) if isinstance(result, bytes) else self.done.errback(result)


def _within(
    reactor: Any, exchange: Coroutine[Any, Any, bytes], timeout: float, what: str
) -> Deferred[bytes]:
    """Run *exchange*, cancelled with a timeout error after *timeout* seconds (0: never)."""
    d = Deferred.fromCoroutine(exchange)
    if timeout:
        d.addTimeout(timeout, reactor, onTimeoutCancel=_timeout(what, timeout))
    return d


async def tcp_exchange(
    reactor: Any,
    host: str,
    port: int,
    payload: bytes | None,
    *,
    expect: int | None,
    limit: int,
    timeout: float,
    what: str,
) -> bytes:
    """
    One TCP exchange with (*host*, *port*) under a single *timeout* for
    resolution, connection and transfer; the bytes received.
    """
    return await _within(
        reactor,
        _tcp_exchange(reactor, host, port, payload, expect, limit, timeout, what),
        timeout,
        what,
    )


async def _tcp_exchange(
    reactor: Any,
    host: str,
    port: int,
    payload: bytes | None,
    expect: int | None,
    limit: int,
    timeout: float,
    what: str,
) -> bytes:
    from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol

    address, family = await resolve(reactor, host, timeout)
    endpoint_type = TCP6ClientEndpoint if family == socket.AF_INET6 else TCP4ClientEndpoint
    endpoint = endpoint_type(reactor, address, port, timeout=int(timeout) + 1 if timeout else 30)
    exchange = _TCPExchange(payload, expect, limit)
    exchange.what = what
    try:
        await connectProtocol(endpoint, exchange)
    except ConnectingCancelledError:
        # Cancelled while connecting (Ctrl-C, or the deadline): a cancellation.
        raise defer.CancelledError() from None
    except ConnectionRefusedError:
        raise RefusedError(f"{what}: connection refused") from None
    except ConnectError as e:
        raise UnreachableError(f"{what}: cannot connect: {connect_reason(e)}") from None
    return await exchange.done


def connect_reason(error: BaseException) -> str:
    """
    Why a connect failed, in the system's words ("no route to host",
    "network is unreachable", "connection lost", "timed out"): never Twisted's
    "An error occurred while connecting: ..." prefix, its errno numbers, or
    the repr of a Failure it wraps.
    """
    if isinstance(error, ConnectError):
        os_error, detail = error.osError, error.args[0] if error.args else ""
        if isinstance(os_error, Failure) and os_error.value is not None:
            return connect_reason(os_error.value)
        if detail:
            text = str(detail)
        elif isinstance(os_error, int):
            text = os.strerror(os_error)
        elif isinstance(os_error, str) and os_error:
            text = os_error.partition(": ")[2] if os_error[:1].isdigit() else os_error
        elif isinstance(error, (TCPTimedOutError, UserTimeoutError)):
            text = "timed out"
        elif type(error) is ConnectError:
            text = "connection failed"
        else:
            text = error.MESSAGE
    elif isinstance(error, ConnectionLost):
        text = "connection lost"
    else:
        text = _reason(error)
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


class _UDPExchange(DatagramProtocol):
    """Send one datagram on a connected UDP socket; the first reply wins."""

    noisy = False

    def __init__(self, host: str, port: int, payload: bytes, what: str) -> None:
        self.host = host
        self.port = port
        self.payload = payload
        self.what = what
        self.done: Deferred[bytes] = Deferred()

    def startProtocol(self) -> None:
        assert self.transport is not None
        try:
            self.transport.connect(self.host, self.port)
            self.transport.write(self.payload)  # type: ignore[call-arg]
        except MessageLengthError:
            self._fail(
                UnreachableError(
                    f"{self.what}: a {len(self.payload)}-byte datagram is too large to send"
                )
            )
        except (OSError, InvalidAddressError) as e:
            self._fail(UnreachableError(f"{self.what}: cannot send: {connect_reason(e)}"))

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        if not self.done.called:
            self.done.callback(datagram)

    def connectionRefused(self) -> None:
        self._fail(RefusedError(f"{self.what}: port unreachable (nothing listening)"))

    def stopProtocol(self) -> None:
        # Before any answer, the port only stops on a socket error: Twisted's
        # epoll reactor drops a connected UDP port on the ICMP port
        # unreachable (EPOLLERR) instead of calling connectionRefused.
        self.connectionRefused()

    def _fail(self, error: ServiceError) -> None:
        if not self.done.called:
            self.done.errback(Failure(error))


async def udp_exchange(
    reactor: Any,
    host: str,
    port: int,
    payload: bytes,
    *,
    timeout: float,
    what: str,
) -> bytes:
    """
    Send *payload* in one datagram to (*host*, *port*) and return the first
    datagram that comes back from there, under a single *timeout*.
    """
    return await _within(
        reactor, _udp_exchange(reactor, host, port, payload, timeout, what), timeout, what
    )


async def _udp_exchange(
    reactor: Any, host: str, port: int, payload: bytes, timeout: float, what: str
) -> bytes:
    address, family = await resolve(reactor, host, timeout)
    exchange = _UDPExchange(address, port, payload, what)
    interface = "::" if family == socket.AF_INET6 else ""
    listening = reactor.listenUDP(0, exchange, interface=interface, maxPacketSize=MAX_UDP)
    try:
        return await exchange.done
    finally:
        await defer.maybeDeferred(listening.stopListening)


class _UDPSend(_UDPExchange):
    """Send one datagram and expect nothing back: an answer is a protocol error."""

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self._fail(ProtocolError(f"{self.what}: answered, and should not have"))


async def udp_send(
    reactor: Any, host: str, port: int, payload: bytes, *, grace: float, what: str
) -> None:
    """
    Send *payload* in one datagram to (*host*, *port*); return after *grace*
    seconds unless an ICMP port unreachable (:class:`RefusedError`) or an
    answer (:class:`ProtocolError`) came back first.
    """
    address, family = await resolve(reactor, host, grace + 5)
    sender = _UDPSend(address, port, payload, what)
    interface = "::" if family == socket.AF_INET6 else ""
    listening = reactor.listenUDP(0, sender, interface=interface, maxPacketSize=MAX_UDP)

    def passed() -> None:
        if not sender.done.called:
            sender.done.callback(b"")

    call = reactor.callLater(grace, passed)
    try:
        await sender.done
    finally:
        if call.active():
            call.cancel()
        await defer.maybeDeferred(listening.stopListening)
