"""
The HEAD client: :class:`HeadClientProtocol` sends one request and parses
the head of the response; :func:`head` connects (resolving names through
:mod:`netproto.lookup`), enforces the one deadline and follows redirects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast
from urllib.parse import urljoin

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener, IReactorTime, ITransport
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from netproto.head._connect import (
    Deadline,
    Route,
    connect_error,
    find_addresses,
    host_port,
    seconds,
    tls_creator,
)
from netproto.head._connect import endpoint_for as _endpoint
from netproto.head._parser import HeadLimits, HeadParseError, HeadParser, ResponseHead
from netproto.head._proxy import connect_request, parse_proxy, proxy_for
from netproto.head._response import (
    REDIRECT_STATUSES,
    HeadCertificateError,
    HeadError,
    HeadProtocolError,
    HeadProxyError,
    HeadResponse,
    HeadTimeoutError,
    HeadTLSError,
    RedirectError,
    Timing,
)
from netproto.head._target import (
    Target,
    TargetError,
    build_request,
    parse_header,
    parse_target,
    redirect_target,
)
from netproto.lookup import Lookup
from netproto.util import format_host_port, positive_seconds

__all__ = ["CLOSE_GRACE", "HeadClientProtocol", "head"]

log = Logger(namespace="netproto.head")
"""Events of this module, under the public namespace ``netproto.head``."""

CLOSE_GRACE = 1.0
"""Seconds a finished connection may take to close cleanly before it is aborted."""


def _peer_text(transport: ITransport) -> str:
    address: Any = transport.getPeer()
    return format_host_port(str(getattr(address, "host", "?")), getattr(address, "port", 0))


def _tls_error(value: BaseException) -> HeadTLSError:
    """The error of a failed handshake: the certificate's when it was not verified."""
    if isinstance(value, VerificationError):
        return HeadCertificateError(
            "TLS handshake failed: the certificate does not match the host name"
        )
    if isinstance(value, SSL.Error):
        parts = [
            str(item[2])
            for item in (value.args[0] if value.args else [])
            if isinstance(item, tuple) and len(item) >= 3 and item[2]
        ]
        why = "; ".join(parts) or "TLS error"
        if "certificate verify failed" in why:
            return HeadCertificateError(f"TLS handshake failed: {why}")
        return HeadTLSError(f"TLS handshake failed: {why}")
    return HeadTLSError(f"TLS handshake failed: {value or type(value).__name__}")


@implementer(IHandshakeListener)
class HeadClientProtocol(Protocol):
    """
    Sends one HEAD request and parses the head of the response.

    :attr:`finished` fires after the connection is closed: with this
    protocol (read :attr:`head`, :attr:`interim` and the times) if the head
    was complete, or with a :class:`HeadError`. Time comes from *clock*.
    With *tunnel* (the ``CONNECT`` request and the TLS client of the
    target), it first asks a proxy for a tunnel, then starts TLS in it and
    sends *request*. *on_request* is called with the peer and the request
    bytes as they are sent.
    """

    transport: ITransport

    def __init__(
        self,
        request: bytes,
        clock: IReactorTime,
        *,
        limits: HeadLimits | None = None,
        started: float | None = None,
        tunnel: tuple[bytes, Any] | None = None,
        on_request: Callable[[str, bytes], object] | None = None,
    ) -> None:
        self._request = request
        self._clock = clock
        self._parser = HeadParser(limits or HeadLimits())
        self._tunnel = tunnel
        self._tunnel_parser = HeadParser(limits or HeadLimits()) if tunnel else None
        self._on_request = on_request
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

    @property
    def tunnelling(self) -> bool:
        """Whether the proxy's answer to ``CONNECT`` is still awaited."""
        return self._tunnel_parser is not None

    def connectionMade(self) -> None:
        self.connected_at = self._clock.seconds()
        self.peer = _peer_text(self.transport)
        if self._tunnel is not None:
            self.transport.write(self._tunnel[0])
        else:
            self._send()

    def _send(self) -> None:
        if self._on_request is not None:
            self._on_request(self.peer, self._request)
        self.transport.write(self._request)

    def handshakeCompleted(self) -> None:
        self.tls_at = self._clock.seconds()

    def _tunnel_data(self, data: bytes) -> None:
        """The proxy's answer to ``CONNECT``: on 2xx, TLS in the tunnel, then the request."""
        assert self._tunnel_parser is not None and self._tunnel is not None
        try:
            answer = self._tunnel_parser.feed(data)
        except HeadParseError as e:
            self.abort(HeadProxyError(f"the proxy's answer to CONNECT: {e}"))
            return
        if answer is None:
            return
        if not 200 <= answer.status < 300:
            self.abort(HeadProxyError(f"the proxy refused the tunnel: {answer.status_line}"))
            return
        self._tunnel_parser = None
        self.transport.startTLS(self._tunnel[1])  # type: ignore[attr-defined]
        self._send()

    def dataReceived(self, data: bytes) -> None:
        if self.head is not None or self._error is not None:
            return
        if self._tunnel_parser is not None:
            self._tunnel_data(data)
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
                self._error = _tls_error(reason.value or Exception())
            elif self._tunnel_parser is not None:
                self._error = HeadProxyError("the proxy closed the connection before the tunnel")
            else:
                try:
                    self._parser.eof()
                except HeadParseError as e:
                    self._error = HeadProtocolError(str(e), e, empty=self.received == 0)
        assert self._error is not None
        self.finished.errback(self._error)


class _HeadFactory(Factory):
    noisy = False

    def __init__(self, request: bytes, clock: IReactorTime, **options: Any) -> None:
        self._args = request, clock
        self._options = options
        self.protocol_instance: HeadClientProtocol | None = None

    def buildProtocol(self, addr: object) -> HeadClientProtocol:
        request, clock = self._args
        self.protocol_instance = HeadClientProtocol(request, clock, **self._options)
        return self.protocol_instance


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
    route: Route,
) -> HeadResponse:
    """
    One request on one connection, bounded by *deadline* (reactor seconds):
    the name looked up (the proxy's, with a proxy), then its addresses tried
    in order until one connects.
    """
    started = reactor.seconds()
    remaining = deadline - started
    if remaining <= 0:
        raise HeadTimeoutError(f"timed out after {seconds(timeout)} s")
    proxy = route.proxy
    tunnel = None
    if proxy is not None and target.scheme == "https":
        tunnel = (connect_request(target), tls_creator(target, insecure, trust_root))
    request = build_request(
        target,
        http10=http10,
        headers=route.headers,
        absolute=proxy is not None and tunnel is None,
    )
    factory = _HeadFactory(
        request,
        reactor,
        limits=limits,
        started=started,
        tunnel=tunnel,
        on_request=route.on_request,
    )
    timer = Deadline(reactor, remaining, timeout)
    timer.protocol = lambda: factory.protocol_instance
    peer = proxy or target
    where = f"proxy {host_port(peer)}" if proxy is not None else host_port(target)

    def stage(proto: HeadClientProtocol) -> str:
        if proto.tunnelling:
            return f"waiting for the answer of {where} to CONNECT"
        if target.scheme == "https" and proto.tls_at is None:
            return f"in the TLS handshake with {host_port(target)}"
        return (
            f"waiting for the response head from {host_port(target)} "
            f"({proto.received} bytes of head received)"
        )

    timer.stage = stage
    try:
        addresses = await find_addresses(reactor, peer, route, timer)
        looked_up = reactor.seconds()
        failure: BaseException | None = None
        for address in addresses:
            left = deadline - reactor.seconds()
            connecting = _endpoint(reactor, peer, address, left, insecure, trust_root)
            try:
                proto = cast(
                    HeadClientProtocol,
                    await timer.wait(connecting.connect(factory), f"connecting to {where}"),
                )
            except HeadError:
                raise
            except Exception as e:
                failure = e  # this address failed: try the next one
                continue
            break
        else:
            raise connect_error(peer, failure or Exception("no address"), proxy is not None)
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
            name_lookup=looked_up - started,
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
    route: Route,
    proxy_env: Mapping[str, str] | None,
) -> HeadResponse:
    current = parse_target(target) if isinstance(target, str) else target
    deadline = reactor.seconds() + timeout
    hops: list[HeadResponse] = []
    seen = {current.url}
    while True:
        hop_route = route
        if proxy_env is not None and route.proxy is None:
            hop_route = replace(route, proxy=proxy_for(current, proxy_env))
        response = await _exchange(
            reactor,
            current,
            deadline=deadline,
            timeout=timeout,
            http10=http10,
            limits=limits,
            insecure=insecure,
            trust_root=trust_root,
            route=hop_route,
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
    headers: Sequence[str | tuple[str, str | None]] = (),
    resolve: Mapping[tuple[str, int], str] | None = None,
    family: int | None = None,
    proxy: str | None = None,
    proxy_env: Mapping[str, str] | None = None,
    on_request: Callable[[str, bytes], object] | None = None,
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

    As curl's options: *headers* are request fields, ``"Name: value"`` or
    ``(name, value)`` (curl's ``-H``: they replace the client's own of that
    name, ``"Name:"`` removes one, ``"Name;"`` sends it empty).
    *resolve* maps ``(host, port)`` to the address to connect to instead of
    looking the host up (``--resolve HOST:PORT:ADDR``; the ``Host`` field and
    TLS still name the host). *family*: 4 or 6, that family only (``-4``,
    ``-6``). *proxy*: an HTTP proxy URL for every hop (``-x``): ``http://``
    targets are asked through it with the whole URL, ``https://`` ones
    through a ``CONNECT`` tunnel. *proxy_env*: the environment whose
    ``http_proxy``, ``https_proxy``, ``all_proxy`` and ``no_proxy`` choose
    each hop's proxy, as curl reads them (:func:`proxy_for`; pass
    ``os.environ``). *on_request*: called with the peer and the request
    bytes as each request is sent (``-v``). The timing of each hop is in
    :attr:`HeadResponse.timing`.

    Errors: :class:`TargetError` (bad target or header, raised at once),
    :class:`HeadTimeoutError`, :class:`HeadConnectError` (with
    :class:`HeadResolveError` and :class:`HeadProxyError`),
    :class:`HeadTLSError` (with :class:`HeadCertificateError`),
    :class:`HeadProtocolError` and :class:`RedirectError`, all
    :class:`HeadError` with a one-line message. HTTP error statuses (4xx,
    5xx) are responses, not errors.
    """
    timeout = positive_seconds(timeout)
    if isinstance(target, str):
        target = parse_target(target)
    if family not in (None, 4, 6):
        raise ValueError(f"family must be 4, 6 or None, not {family!r}")
    fields = tuple(parse_header(h) if isinstance(h, str) else h for h in headers)
    route = Route(
        lookup=lookup,
        resolve={
            (host.lower(), port): address for (host, port), address in (resolve or {}).items()
        },
        family=family,
        proxy=parse_proxy(proxy) if proxy else None,
        headers=fields,
        on_request=on_request,
    )
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
            route=route,
            proxy_env=proxy_env,
        )
    )
