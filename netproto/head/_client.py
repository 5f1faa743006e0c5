"""
The HEAD client: :class:`HeadClientProtocol` sends one request and parses
the head of the response; :func:`head` connects (resolving names through
:mod:`netproto.lookup`), enforces the one deadline and follows redirects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast
from urllib.parse import urljoin

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IHandshakeListener, IReactorTime, ITransport
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from netproto._service import connect_reason
from netproto.head._connect import endpoint_for as _endpoint
from netproto.head._connect import host_port
from netproto.head._parser import HeadLimits, HeadParseError, HeadParser, ResponseHead
from netproto.head._response import (
    REDIRECT_STATUSES,
    HeadConnectError,
    HeadError,
    HeadProtocolError,
    HeadResponse,
    HeadTimeoutError,
    HeadTLSError,
    RedirectError,
    Timing,
)
from netproto.head._target import Target, TargetError, build_request, parse_target, redirect_target
from netproto.lookup import InvalidLookupError, Lookup, NameLookupError
from netproto.util import format_host_port, positive_seconds

__all__ = ["CLOSE_GRACE", "HeadClientProtocol", "head"]

log = Logger(namespace="netproto.head")
"""Events of this module, under the public namespace ``netproto.head``."""

CLOSE_GRACE = 1.0
"""Seconds a finished connection may take to close cleanly before it is aborted."""


def _peer_text(transport: ITransport) -> str:
    address: Any = transport.getPeer()
    return format_host_port(str(getattr(address, "host", "?")), getattr(address, "port", 0))


def _tls_reason(value: BaseException) -> str:
    if isinstance(value, VerificationError):
        return "the certificate does not match the host name"
    if isinstance(value, SSL.Error):
        parts = [
            str(item[2])
            for item in (value.args[0] if value.args else [])
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

    transport: ITransport

    def __init__(
        self,
        request: bytes,
        clock: IReactorTime,
        *,
        limits: HeadLimits | None = None,
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
    return HeadConnectError(f"cannot connect to {where}: {connect_reason(error)}")


def _seconds(value: float) -> str:
    return f"{value:g}"


class _Deadline:
    """
    The deadline of one exchange: when it passes, what is pending (the name
    lookup, a connect) is cancelled, or the connected protocol aborted.
    """

    def __init__(self, reactor: Any, remaining: float, timeout: float) -> None:
        self.timeout = timeout
        self.expired = False
        self.pending: Deferred[Any] | None = None
        self.protocol: Callable[[], HeadClientProtocol | None] = lambda: None
        self.stage: Callable[[HeadClientProtocol], str] = lambda proto: ""
        self._timer = reactor.callLater(remaining, self._expire)

    def _expire(self) -> None:
        self.expired = True
        proto = self.protocol()
        if proto is not None and proto.connected_at is not None:
            proto.abort(self.error(self.stage(proto)))
        elif self.pending is not None:
            self.pending.cancel()

    def error(self, stage: str) -> HeadTimeoutError:
        """The timeout error, *stage* saying what was being waited for."""
        return HeadTimeoutError(f"timed out after {_seconds(self.timeout)} s {stage}")

    async def wait(self, pending: Deferred[Any], stage: str) -> Any:
        """The result of *pending*, or the timeout error naming *stage* if it expired first."""
        self.pending = pending
        try:
            return await pending
        except CancelledError:
            if self.expired:
                raise self.error(stage) from None
            raise
        finally:
            self.pending = None

    def cancel(self) -> None:
        """The exchange ended: the deadline no longer matters."""
        if self._timer.active():
            self._timer.cancel()


async def _addresses(
    reactor: Any, target: Target, lookup: Lookup | None, deadline: _Deadline
) -> list[str]:
    """The addresses to try for *target*: the literal itself, or what *lookup* finds."""
    if target.is_ipv4 or target.is_ipv6:
        return [target.host]
    finder = lookup if lookup is not None else Lookup(reactor, timeout=deadline.timeout)
    pending = Deferred.fromCoroutine(finder.lookup_host(target.host))
    try:
        found = await deadline.wait(pending, f"resolving host name {target.host!r}")
    except InvalidLookupError as e:
        # Nothing was looked up: say what is wrong with the text.
        raise HeadConnectError(str(e)) from None
    except NameLookupError as e:
        # The lookup's own words say which: no such host, no answer, ...
        raise HeadConnectError(f"cannot resolve {e}") from None
    return [str(address) for address in found]


async def _exchange(
    reactor: Any,
    target: Target,
    *,
    deadline: float,
    timeout: float,
    http10: bool,
    limits: HeadLimits,
    insecure: bool,
    trust_root: Any,
    lookup: Lookup | None,
) -> HeadResponse:
    """
    One request on one connection, bounded by *deadline* (reactor seconds):
    the name looked up, then its addresses tried in order until one connects.
    """
    started = reactor.seconds()
    remaining = deadline - started
    if remaining <= 0:
        raise HeadTimeoutError(f"timed out after {_seconds(timeout)} s")
    factory = _HeadFactory(build_request(target, http10=http10), reactor, limits, started)
    timer = _Deadline(reactor, remaining, timeout)
    timer.protocol = lambda: factory.protocol_instance

    def stage(proto: HeadClientProtocol) -> str:
        if target.scheme == "https" and proto.tls_at is None:
            return f"in the TLS handshake with {host_port(target)}"
        return (
            f"waiting for the response head from {host_port(target)} "
            f"({proto.received} bytes of head received)"
        )

    timer.stage = stage
    try:
        addresses = await _addresses(reactor, target, lookup, timer)
        failure: BaseException | None = None
        for address in addresses:
            left = deadline - reactor.seconds()
            connecting = _endpoint(reactor, target, address, left, insecure, trust_root)
            try:
                proto = cast(
                    HeadClientProtocol,
                    await timer.wait(
                        connecting.connect(factory), f"connecting to {host_port(target)}"
                    ),
                )
            except HeadError:
                raise
            except Exception as e:
                failure = e  # this address failed: try the next one
                continue
            break
        else:
            raise _connect_error(target, failure or Exception("no address"))
        await proto.finished
    finally:
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
    reactor: Any,
    target: str | Target,
    *,
    timeout: float,
    follow: bool,
    max_redirects: int,
    http10: bool,
    insecure: bool,
    trust_root: Any,
    limits: HeadLimits,
    on_response: Callable[[HeadResponse], object] | None,
    lookup: Lookup | None,
) -> HeadResponse:
    current = parse_target(target) if isinstance(target, str) else target
    deadline = reactor.seconds() + timeout
    hops: list[HeadResponse] = []
    seen = {current.url}
    while True:
        response = await _exchange(
            reactor,
            current,
            deadline=deadline,
            timeout=timeout,
            http10=http10,
            limits=limits,
            insecure=insecure,
            trust_root=trust_root,
            lookup=lookup,
        )
        response = replace(response, history=tuple(hops))
        log.debug(
            "HEAD {url} -> {status} in {total:.3f} s",
            url=response.url,
            status=response.status,
            total=response.timing.total,
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
    trust_root: Any = None,
    limits: HeadLimits | None = None,
    on_response: Callable[[HeadResponse], object] | None = None,
    lookup: Lookup | None = None,
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
    *http10*: send the bare HTTP/1.0 request, ``HEAD / HTTP/1.0`` and an
    empty line. *insecure*: do not verify the TLS certificate.
    *trust_root*: the certificate authorities to trust instead of the
    platform's (what :func:`twisted.internet.ssl.trustRootFromCertificates`
    returns). *on_response*: called with each hop as it completes.
    *lookup*: the :class:`~netproto.lookup.Lookup` that resolves host names
    (by default the system's, within the deadline); its addresses are tried
    in order.

    Errors: :class:`TargetError` (bad target, raised at once),
    :class:`HeadTimeoutError`, :class:`HeadConnectError`, :class:`HeadTLSError`,
    :class:`HeadProtocolError` and :class:`RedirectError`, all
    :class:`HeadError` with a one-line message. HTTP error statuses (4xx,
    5xx) are responses, not errors.
    """
    timeout = positive_seconds(timeout)
    if isinstance(target, str):
        target = parse_target(target)
    return Deferred.fromCoroutine(
        _head(
            reactor,
            target,
            timeout=timeout,
            follow=follow,
            max_redirects=max_redirects,
            http10=http10,
            insecure=insecure,
            trust_root=trust_root,
            limits=limits or HeadLimits(),
            on_response=on_response,
            lookup=lookup,
        )
    )
