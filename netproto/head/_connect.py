"""
How a HEAD request connects: the route (proxy, ``resolve`` entries, family),
the addresses of a target (through :mod:`netproto.lookup`), the deadline of
one exchange, the endpoint for one address and its TLS wrapping, verified
or not, and the error of a failed connect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from OpenSSL import SSL
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IStreamClientEndpoint
from twisted.internet.ssl import optionsForClientTLS
from zope.interface import implementer

from netproto._service import connect_reason
from netproto.head._response import HeadConnectError, HeadResolveError, HeadTimeoutError
from netproto.head._target import Target
from netproto.lookup import InvalidLookupError, Lookup, NameLookupError
from netproto.util import format_host_port

__all__ = [
    "Deadline",
    "Route",
    "connect_error",
    "endpoint_for",
    "find_addresses",
    "host_port",
    "seconds",
    "tls_creator",
]


@implementer(IOpenSSLClientConnectionCreator)
class _InsecureTLS:
    """TLS with server name indication but no certificate verification (``insecure=True``)."""

    def __init__(self, host: str, is_ip: bool) -> None:
        self._name = None if is_ip else host.encode("ascii")
        self._context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        self._context.set_verify(SSL.VERIFY_NONE)
        self._context.set_alpn_protos([b"http/1.1"])

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        if self._name:
            connection.set_tlsext_host_name(self._name)
        connection.set_connect_state()
        return connection


def endpoint_for(
    reactor: Any, target: Target, address: str, timeout: float, insecure: bool, trust_root: Any
) -> IStreamClientEndpoint:
    """
    The endpoint that connects to *target* at *address* (one of its
    addresses, as text), TLS-wrapped for ``https``: verified against
    *trust_root* (what :func:`twisted.internet.ssl.trustRootFromCertificates`
    returns; ``None``: the platform's) unless *insecure*.
    """
    endpoint: IStreamClientEndpoint
    seconds = max(timeout, 0.001)
    if ":" in address:
        endpoint = TCP6ClientEndpoint(reactor, address, target.port, timeout=seconds)
    else:
        endpoint = TCP4ClientEndpoint(reactor, address, target.port, timeout=seconds)
    if target.scheme == "https":
        endpoint = wrapClientTLS(tls_creator(target, insecure, trust_root), endpoint)
    return endpoint


def tls_creator(target: Target, insecure: bool, trust_root: Any) -> IOpenSSLClientConnectionCreator:
    """
    The TLS client of a connection to *target*: server name indication for
    a host name, the certificate verified against *trust_root* (the
    platform's when ``None``) unless *insecure*.
    """
    if insecure:
        return _InsecureTLS(target.host, target.is_ipv6 or target.is_ipv4)
    return optionsForClientTLS(
        target.host.partition("%")[0],
        trustRoot=trust_root,
        acceptableProtocols=[b"http/1.1"],
    )


def host_port(target: Target) -> str:
    """``host:port`` for messages, IPv6 bracketed, the port always shown."""
    return format_host_port(target.host, target.port)


def connect_error(target: Target, error: BaseException, proxy: bool) -> HeadConnectError:
    where = ("proxy " if proxy else "") + host_port(target)
    if isinstance(error, ConnectionRefusedError):
        return HeadConnectError(f"connection to {where} refused")
    return HeadConnectError(f"cannot connect to {where}: {connect_reason(error)}")


def seconds(value: float) -> str:
    return f"{value:g}"


class Deadline:
    """
    The deadline of one exchange: when it passes, what is pending (the name
    lookup, a connect) is cancelled, or the connected protocol aborted.
    """

    def __init__(self, reactor: Any, remaining: float, timeout: float) -> None:
        self.timeout = timeout
        self.expired = False
        self.pending: Deferred[Any] | None = None
        self.protocol: Callable[[], Any] = lambda: None
        self.stage: Callable[[Any], str] = lambda proto: ""
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
        return HeadTimeoutError(f"timed out after {seconds(self.timeout)} s {stage}")

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


@dataclass(frozen=True)
class Route:
    """How one exchange connects: the options of :func:`head` that say where, and how."""

    lookup: Lookup | None = None
    resolve: Mapping[tuple[str, int], str] = field(default_factory=dict)
    family: int | None = None
    proxy: Target | None = None
    headers: tuple[tuple[str, str | None], ...] = ()
    on_request: Callable[[str, bytes], object] | None = None


async def find_addresses(
    reactor: Any, target: Target, route: Route, deadline: Deadline
) -> list[str]:
    """
    The addresses to try for *target*: a ``resolve`` entry, the literal
    itself, or what the lookup finds (of the ``family`` only, if given).
    """
    proxy = route.proxy is not None and target is route.proxy
    given = route.resolve.get((target.host.lower(), target.port))
    if given is not None:
        return [given]
    if target.is_ipv4 or target.is_ipv6:
        version = 6 if target.is_ipv6 else 4
        if route.family not in (None, version):
            raise HeadResolveError(
                f"{target.host} is an IPv{version} address, not IPv{route.family}", proxy=proxy
            )
        return [target.host]
    finder = route.lookup or Lookup(reactor, timeout=deadline.timeout)
    network = {None: "ip", 4: "ip4", 6: "ip6"}[route.family]

    async def find() -> list[Any]:
        if route.family is None:
            return list(await finder.lookup_host(target.host))
        answer = await finder.lookup(target.host, network)
        if not answer.addresses:
            raise answer.no_address()
        return list(answer.addresses)

    pending = Deferred.fromCoroutine(find())
    what = "the proxy's host name" if proxy else "host name"
    try:
        found = await deadline.wait(pending, f"resolving {what} {target.host!r}")
    except InvalidLookupError as e:
        # Nothing was looked up: say what is wrong with the text.
        raise HeadConnectError(str(e)) from None
    except NameLookupError as e:
        # The lookup's own words say which: no such host, no answer, ...
        prefix = "cannot resolve proxy" if proxy else "cannot resolve"
        raise HeadResolveError(f"{prefix} {e}", proxy=proxy) from None
    return [str(address) for address in found]
