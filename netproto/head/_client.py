"""
An HTTP HEAD client that cannot hang: the seed's ``GetHeadInfo`` and
``IPGetHeadInfo``, done right.

:func:`head` sends ``HEAD <path> HTTP/1.1`` with exactly one ``Host``
(IPv6 literals bracketed, default ports omitted), ``User-Agent:
netproto/<version>`` and ``Connection: close``; it parses the response head
as it arrives (:mod:`netproto._httphead`), completes at the empty line that
ends it, whatever ``Content-Length`` says, and closes the connection. One
deadline covers name resolution, connect, TLS and the whole response (and,
with ``follow=True``, every hop), so a peer that drips one byte every 250 ms
cannot keep it waiting. Caps bound the head (:class:`HeadLimits`). Peers that do
not speak HTTP fail at their first byte.

Targets are ``http://`` and ``https://`` URLs (TLS with certificate
verification through :func:`twisted.internet.ssl.optionsForClientTLS`) or
the seed's ``host:port`` form (``[::1]:8080``). Host names are resolved by
:class:`~twisted.internet.endpoints.HostnameEndpoint`, never blocking the
reactor.

.. code-block:: python

    from twisted.internet import task
    from twisted.internet.defer import Deferred
    from netproto.head import head

    async def main(reactor):
        response = await head(reactor, "http://127.0.0.1:8080/", timeout=5)
        print(response.status_line, response.get("Server"))

    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor)))

The parsing rules (RFC 9112 choices) are listed in the guide, *HTTP HEAD*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import urljoin

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet._sslverify import IOpenSSLTrustRoot
from twisted.internet.address import IPv6Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionRefusedError, DNSLookupError
from twisted.internet.interfaces import (
    IHandshakeListener,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.ssl import Certificate
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from netproto._httpconnect import endpoint_for as _endpoint
from netproto._httpconnect import host_port
from netproto._httphead import (
    HeadFields,
    HeadLimits,
    HeadParseError,
    HeadParser,
    HeadTooLargeError,
    NotHTTPError,
    ResponseHead,
)
from netproto._httptarget import Target, TargetError, build_request, parse_target, redirect_target

__all__ = [
    "REDIRECT_STATUSES",
    "HeadClientProtocol",
    "HeadConnectError",
    "HeadError",
    "HeadLimits",
    "HeadParseError",
    "HeadProtocolError",
    "HeadResponse",
    "HeadTLSError",
    "HeadTimeoutError",
    "HeadTooLargeError",
    "NotHTTPError",
    "RedirectError",
    "ResponseHead",
    "Target",
    "TargetError",
    "Timing",
    "build_request",
    "head",
    "parse_target",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
"""Status codes whose ``Location`` is a redirect to report (or follow)."""

CLOSE_GRACE = 1.0
"""Seconds a finished connection may take to close cleanly before it is aborted."""


class HeadError(Exception):
    """The HEAD request failed; the message says why, in one line."""


class HeadTimeoutError(HeadError):
    """The deadline passed before the response head was complete."""


class HeadConnectError(HeadError):
    """No connection: the name did not resolve, or the peer refused."""


class HeadTLSError(HeadError):
    """The TLS handshake failed (certificate not trusted, wrong name, not TLS)."""


class HeadProtocolError(HeadError):
    """The peer's response is not a valid HTTP/1.x head (or it is too large)."""

    def __init__(self, message: str, cause: HeadParseError | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class RedirectError(HeadError):
    """A redirect could not be followed: loop, too many, or not http(s)."""

    def __init__(self, message: str, response: HeadResponse) -> None:
        super().__init__(message)
        self.response = response
        """The redirect response that could not be followed (its ``history`` holds the rest)."""


@dataclass(frozen=True)
class Timing:
    """Seconds since the request started (name resolution included)."""

    connect: float
    """TCP connection established."""
    tls: float | None
    """TLS handshake complete (None for ``http://``)."""
    first_byte: float
    """First byte of the response."""
    total: float
    """End of the response head."""


@dataclass(frozen=True)
class HeadResponse(HeadFields):
    """The answer to one HEAD request (one hop)."""

    url: str
    """The normalised URL asked."""
    peer: str
    """The address connected to: ``127.0.0.1:8080`` or ``[::1]:8080``."""
    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    """Field lines in order, repeated names kept, values ISO-8859-1 decoded."""
    interim: tuple[ResponseHead, ...]
    """1xx responses received before this one."""
    timing: Timing
    redirect: str | None
    """For 301, 302, 303, 307, 308 with a ``Location``: the absolute URL it points to."""
    history: tuple[HeadResponse, ...] = ()
    """With ``follow=True``: the redirects that led here, first first."""


def _peer_text(transport: ITransport) -> str:
    address: Any = transport.getPeer()
    host, port = getattr(address, "host", "?"), getattr(address, "port", 0)
    if isinstance(address, IPv6Address):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def _tls_reason(value: BaseException) -> str:
    if isinstance(value, VerificationError):
        return "the certificate does not match the host name"
    if isinstance(value, SSL.Error):
        parts = [
            str(item[2]) for item in (value.args[0] if value.args else [])
            if isinstance(item, tuple) and len(item) >= 3 and item[2]
        ]
        return "; ".join(parts) or "TLS error"
    return str(value) or type(value).__name__


@implementer(IHandshakeListener)
class HeadClientProtocol(Protocol):
    """
    Sends one HEAD request and parses the head of the response.

    :attr:`finished` fires after the connection is closed: with this
    protocol (read :attr:`head`, :attr:`interim` and the times) if the head
    was complete, or with a :class:`HeadError`. Time comes from *clock*.
    """

    log = Logger()
    transport: ITransport

    def __init__(
        self, request: bytes, clock: IReactorTime, *, limits: HeadLimits | None = None,
        started: float | None = None,
    ) -> None:
        self._request = request
        self._clock = clock
        self._parser = HeadParser(limits or HeadLimits())
        self.started = clock.seconds() if started is None else started
        self.finished: Deferred[HeadClientProtocol] = Deferred(self._cancel)
        self.head: ResponseHead | None = None
        self.interim: tuple[ResponseHead, ...] = ()
        self.peer = "?"
        self.connected_at: float | None = None
        self.tls_at: float | None = None
        self.first_byte_at: float | None = None
        self.done_at: float | None = None
        self._error: HeadError | None = None
        self._grace: Any = None

    @property
    def received(self) -> int:
        """Bytes of response head received so far."""
        return self._parser.received

    def connectionMade(self) -> None:
        self.connected_at = self._clock.seconds()
        self.peer = _peer_text(self.transport)
        self.transport.write(self._request)

    def handshakeCompleted(self) -> None:
        self.tls_at = self._clock.seconds()

    def dataReceived(self, data: bytes) -> None:
        if self.head is not None or self._error is not None:
            return
        if self.first_byte_at is None:
            self.first_byte_at = self._clock.seconds()
        try:
            head = self._parser.feed(data)
        except HeadParseError as e:
            self.abort(HeadProtocolError(str(e), e))
            return
        if head is not None:
            self.head = head
            self.interim = tuple(self._parser.interim)
            self.done_at = self._clock.seconds()
            self.transport.loseConnection()
            self._grace = self._clock.callLater(CLOSE_GRACE, self._force_close)

    def abort(self, error: HeadError) -> None:
        """Give up with *error*: drop the connection at once (no waiting for the peer)."""
        if self.head is None and self._error is None:
            self._error = error
        self._force_close()

    def _force_close(self) -> None:
        abort = getattr(self.transport, "abortConnection", None)
        if abort is not None:
            abort()
        elif self.transport is not None:
            self.transport.loseConnection()

    def _cancel(self, d: Deferred[HeadClientProtocol]) -> None:
        self._error = HeadError("cancelled")
        self._force_close()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._grace is not None and self._grace.active():
            self._grace.cancel()
        if self.finished.called:
            return
        if self.head is not None:
            self.finished.callback(self)
            return
        if self._error is None:
            if reason.check(SSL.Error, VerificationError):
                why = _tls_reason(reason.value or Exception())
                self._error = HeadTLSError(f"TLS handshake failed: {why}")
            else:
                try:
                    self._parser.eof()
                except HeadParseError as e:
                    self._error = HeadProtocolError(str(e), e)
        assert self._error is not None
        self.finished.errback(self._error)


class _HeadFactory(Factory):
    def __init__(self, request: bytes, clock: IReactorTime, limits: HeadLimits, started: float):
        self._args = request, clock, limits, started
        self.protocol_instance: HeadClientProtocol | None = None

    def buildProtocol(self, addr: object) -> HeadClientProtocol:
        request, clock, limits, started = self._args
        self.protocol_instance = HeadClientProtocol(request, clock, limits=limits, started=started)
        return self.protocol_instance


def _connect_error(target: Target, error: BaseException) -> HeadConnectError:
    where = host_port(target)
    if isinstance(error, ConnectionRefusedError):
        return HeadConnectError(f"connection to {where} refused")
    if isinstance(error, DNSLookupError):
        return HeadConnectError(f"cannot resolve host name {target.host!r}")
    detail = str(error).strip() or type(error).__name__
    return HeadConnectError(f"cannot connect to {where}: {detail}")


def _seconds(value: float) -> str:
    return f"{value:g}"


async def _exchange(
    reactor: Any, target: Target, *, deadline: float, timeout: float, http10: bool,
    limits: HeadLimits, insecure: bool, trust_root: IOpenSSLTrustRoot | Certificate | None,
) -> HeadResponse:
    """One request on one connection, bounded by *deadline* (reactor seconds)."""
    started = reactor.seconds()
    remaining = deadline - started
    if remaining <= 0:
        raise HeadTimeoutError(f"timed out after {_seconds(timeout)} s")
    factory = _HeadFactory(build_request(target, http10=http10), reactor, limits, started)
    connecting = _endpoint(reactor, target, remaining, insecure, trust_root).connect(factory)
    expired = []

    def expire() -> None:
        expired.append(True)
        proto = factory.protocol_instance
        if proto is not None and proto.connected_at is not None:
            if target.scheme == "https" and proto.tls_at is None:
                stage = f"in the TLS handshake with {host_port(target)}"
            else:
                stage = (f"waiting for the response head from {host_port(target)} "
                         f"({proto.received} bytes of head received)")
            proto.abort(HeadTimeoutError(f"timed out after {_seconds(timeout)} s {stage}"))
        else:
            connecting.cancel()

    timer = reactor.callLater(remaining, expire)
    try:
        try:
            proto = cast(HeadClientProtocol, await connecting)
        except CancelledError:
            if expired:
                raise HeadTimeoutError(
                    f"timed out after {_seconds(timeout)} s connecting to {host_port(target)}"
                ) from None
            raise
        except HeadError:
            raise
        except Exception as e:
            raise _connect_error(target, e) from None
        await proto.finished
    finally:
        if timer.active():
            timer.cancel()
    assert proto.head is not None and proto.connected_at is not None
    assert proto.first_byte_at is not None and proto.done_at is not None
    final = proto.head
    location = final.get("Location")
    redirect = None
    if final.status in REDIRECT_STATUSES and location:
        try:
            redirect = urljoin(target.url, location.strip())
        except ValueError:
            redirect = location.strip()
    return HeadResponse(
        url=target.url,
        peer=proto.peer,
        version=final.version,
        status=final.status,
        reason=final.reason,
        headers=final.headers,
        interim=proto.interim,
        timing=Timing(
            connect=proto.connected_at - started,
            tls=None if proto.tls_at is None else proto.tls_at - started,
            first_byte=proto.first_byte_at - started,
            total=proto.done_at - started,
        ),
        redirect=redirect,
    )


async def _head(
    reactor: Any, target: str | Target, *, timeout: float, follow: bool, max_redirects: int,
    http10: bool, insecure: bool, trust_root: IOpenSSLTrustRoot | Certificate | None,
    limits: HeadLimits, on_response: Callable[[HeadResponse], object] | None,
) -> HeadResponse:
    current = parse_target(target) if isinstance(target, str) else target
    deadline = reactor.seconds() + timeout
    hops: list[HeadResponse] = []
    seen = {current.url}
    while True:
        response = await _exchange(
            reactor, current, deadline=deadline, timeout=timeout, http10=http10,
            limits=limits, insecure=insecure, trust_root=trust_root,
        )
        response = replace(response, history=tuple(hops))
        HeadClientProtocol.log.debug(
            "HEAD {url} -> {status} in {total:.3f} s",
            url=response.url, status=response.status, total=response.timing.total,
        )
        if on_response is not None:
            on_response(response)
        if not follow or response.redirect is None:
            return response
        if len(hops) >= max_redirects:
            raise RedirectError(f"stopped after {max_redirects} redirects", response)
        location = response.get("Location") or ""
        try:
            following = redirect_target(current, location)
        except TargetError as e:
            raise RedirectError(f"cannot follow redirect: {e}", response) from None
        if following.url in seen:
            raise RedirectError(f"redirect loop: {following.url} was already visited", response)
        seen.add(following.url)
        hops.append(response)
        current = following


def head(
    reactor: Any,
    target: str | Target,
    *,
    timeout: float = 10.0,
    follow: bool = False,
    max_redirects: int = 5,
    http10: bool = False,
    insecure: bool = False,
    trust_root: IOpenSSLTrustRoot | Certificate | None = None,
    limits: HeadLimits | None = None,
    on_response: Callable[[HeadResponse], object] | None = None,
) -> Deferred[HeadResponse]:
    """
    Send a HEAD request to *target* and return a Deferred (awaitable) firing
    with the final :class:`HeadResponse` once the connection is closed.

    *target*: ``http://`` or ``https://`` URL, or ``host:port``
    (``[::1]:8080``; no port means 80). *timeout*: one deadline in seconds for
    everything (connects, TLS, responses, every hop). *follow*: follow up to
    *max_redirects* redirects (301, 302, 303, 307, 308), staying HEAD, http(s)
    only; a loop or one redirect too many raises :class:`RedirectError`; by
    default a redirect is returned (see :attr:`HeadResponse.redirect`).
    *http10*: send the seed's request exactly, ``HEAD / HTTP/1.0`` and an
    empty line. *insecure*: do not verify the TLS certificate.
    *trust_root*: the certificate authority to trust instead of the
    platform's. *on_response*: called with each hop as it completes.

    Errors: :class:`TargetError` (bad target, raised at once),
    :class:`HeadTimeoutError`, :class:`HeadConnectError`, :class:`HeadTLSError`,
    :class:`HeadProtocolError` and :class:`RedirectError`, all
    :class:`HeadError` with a one-line message. HTTP error statuses (4xx,
    5xx) are responses, not errors.
    """
    if not timeout > 0:
        raise ValueError("timeout must be positive")
    if isinstance(target, str):
        target = parse_target(target)
    return Deferred.fromCoroutine(_head(
        reactor, target, timeout=timeout, follow=follow, max_redirects=max_redirects,
        http10=http10, insecure=insecure, trust_root=trust_root, limits=limits or HeadLimits(),
        on_response=on_response,
    ))
