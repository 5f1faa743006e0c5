"""
Asking the system (:class:`SystemAsker`): addresses through the reactor's
:class:`~twisted.internet.interfaces.IHostnameResolver` (``getaddrinfo`` in a
thread, so ``nsswitch.conf``, ``/etc/hosts`` and ``resolv.conf`` apply),
canonical names through ``getaddrinfo`` with ``AI_CANONNAME``, and the names
of an address through ``getnameinfo``, both in the reactor's thread pool.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import address as taddress
from twisted.internet import defer
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IResolutionReceiver,
)
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from netproto.lookup._errors import (
    InvalidLookupError,
    LookupTimeoutError,
    NameNotFoundError,
    ServerFailureError,
)
from netproto.lookup._names import absolute, check_host_name, order_addresses
from netproto.util import Address, AddressError, parse_ip

__all__ = ["SystemAsker"]


@implementer(IResolutionReceiver)
class _Collector:
    """Collects what an :class:`IHostnameResolver` resolves; :attr:`done` fires at the end."""

    def __init__(self) -> None:
        self.addresses: list[Address] = []
        self.done: defer.Deferred[list[Address]] = defer.Deferred()

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IAddress) -> None:
        if isinstance(address, (taddress.IPv4Address, taddress.IPv6Address)):
            converted = _from_twisted(address)
            if converted is not None:
                self.addresses.append(converted)

    def resolutionComplete(self) -> None:
        if not self.done.called:
            self.done.callback(self.addresses)


def _from_twisted(address: taddress.IPv4Address | taddress.IPv6Address) -> Address | None:
    """An :mod:`ipaddress` address from Twisted's, its zone kept as a name when known."""
    host = address.host
    if isinstance(address, taddress.IPv6Address) and address.scopeID and "%" not in host:
        scope = address.scopeID
        try:
            zone = socket.if_indextoname(scope) if isinstance(scope, int) else str(scope)
        except OSError:
            zone = str(scope)
        host = f"{host}%{zone}"
    try:
        return parse_ip(host, allow_scope=True)
    except AddressError:
        return None


_NOT_FOUND = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def _resolver_error(error: socket.gaierror, host: str, missing: str) -> Exception:
    """What a ``getaddrinfo`` or ``getnameinfo`` error means: *missing*, or a failure."""
    if error.errno in _NOT_FOUND:
        return NameNotFoundError(f"{host}: {missing} (system resolver)")
    return ServerFailureError(f"{host}: system resolver: {error.strerror or error}")


class SystemAsker:
    """Asks the system: an :class:`IHostnameResolver`, and ``getaddrinfo`` in a thread."""

    def __init__(
        self,
        reactor: Any,
        timeout: float,
        name_resolver: IHostnameResolver | None = None,
        getaddrinfo: Any = socket.getaddrinfo,
        getnameinfo: Any = socket.getnameinfo,
    ) -> None:
        self.timeout = timeout
        self._reactor = reactor
        self._name_resolver = name_resolver
        self._getaddrinfo = getaddrinfo
        self._getnameinfo = getnameinfo

    async def addresses(self, host: str, network: str) -> list[Address]:
        """The addresses of *host* for *network*, in the order of :func:`order_addresses`."""
        resolver = self._name_resolver or self._reactor.nameResolver
        kinds = {"ip": None, "ip4": [taddress.IPv4Address], "ip6": [taddress.IPv6Address]}
        collector = _Collector()
        resolver.resolveHostName(collector, host, 0, kinds[network], "TCP")
        found: list[Address] = await self._within(collector.done, host)
        if not found:
            family = {"ip": "", "ip4": " IPv4", "ip6": " IPv6"}[network]
            raise NameNotFoundError(f"{host}: no{family} address (system resolver)")
        return order_addresses(found)

    async def canonical_name(self, host: str) -> str:
        """The canonical name ``getaddrinfo`` reports for *host*, fully qualified."""
        pending = deferToThreadPool(
            self._reactor,
            self._reactor.getThreadPool(),
            self._getaddrinfo,
            host,
            None,
            0,
            socket.SOCK_STREAM,
            0,
            socket.AI_CANONNAME,
        )
        try:
            infos = await self._within(pending, host)
        except socket.gaierror as e:
            raise _resolver_error(e, host, "no such host") from None
        names = [info[3] for info in infos if info[3]]
        return absolute(names[0] if names else host)

    async def names(self, address: Address) -> list[str]:
        """The name ``getnameinfo`` finds for *address* (one at most), fully qualified."""
        host = str(address)
        pending = deferToThreadPool(
            self._reactor,
            self._reactor.getThreadPool(),
            self._getnameinfo,
            (host, 0),
            socket.NI_NAMEREQD,
        )
        try:
            name, _port = await self._within(pending, host)
        except socket.gaierror as e:
            raise _resolver_error(e, host, "no name") from None
        try:
            check_host_name(name)
        except InvalidLookupError:
            raise NameNotFoundError(f"{host}: no valid name (system resolver)") from None
        return [absolute(name)]

    async def _within(self, pending: defer.Deferred[Any], host: str) -> Any:
        """The result of *pending*, or :class:`LookupTimeoutError` after the timeout."""
        pending.addTimeout(self.timeout, self._reactor)
        try:
            return await pending
        except defer.TimeoutError:
            raise LookupTimeoutError(
                f"{host}: the system resolver did not answer within {self.timeout:g} s"
            ) from None
