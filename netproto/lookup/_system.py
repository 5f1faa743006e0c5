"""
Asking the system (:class:`SystemAsker`): addresses and canonical names
through ``getaddrinfo`` in the reactor's thread pool (as the reactor's own
``nameResolver`` does), so ``nsswitch.conf``, ``/etc/hosts`` and
``resolv.conf`` apply and a failure says which it was: no such host, or no
answer from the system's DNS servers. An injected
:class:`~twisted.internet.interfaces.IHostnameResolver` is used instead when
given (it reports no reasons: every failure is "no address").
The names of an address come from ``getnameinfo``, also in the thread pool.
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


_FAMILY = {"ip": "", "ip4": " IPv4", "ip6": " IPv6"}
_NOT_FOUND = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
_NO_FAMILY = {getattr(socket, "EAI_ADDRFAMILY", socket.EAI_NONAME), *_NOT_FOUND}


def _failure(
    host: str, error: socket.gaierror, network: str = "ip", missing: str = "no such host"
) -> Exception:
    """
    What a ``getaddrinfo`` or ``getnameinfo`` error means: *missing* (the name
    does not exist, or has no address of the family), the DNS servers did not
    answer (``EAI_AGAIN``: unreachable, or failing), or another failure of
    the system resolver.
    """
    if error.errno in _NOT_FOUND or (network != "ip" and error.errno in _NO_FAMILY):
        if network != "ip" and error.errno != socket.EAI_NONAME:
            return NameNotFoundError(f"{host}: no{_FAMILY[network]} address (system resolver)")
        return NameNotFoundError(f"{host}: {missing} (system resolver)")
    reason = (error.strerror or str(error)).lower()
    if error.errno == socket.EAI_AGAIN:
        return ServerFailureError(f"{host}: the system's DNS servers did not answer ({reason})")
    return ServerFailureError(f"{host}: system resolver: {reason}")


def _from_sockaddr(sockaddr: tuple[Any, ...]) -> Address | None:
    """An :mod:`ipaddress` address from a ``getaddrinfo`` socket address, its zone kept."""
    host = str(sockaddr[0])
    if len(sockaddr) >= 4 and sockaddr[3] and "%" not in host:
        try:
            zone = socket.if_indextoname(sockaddr[3])
        except OSError:
            zone = str(sockaddr[3])
        host = f"{host}%{zone}"
    try:
        return parse_ip(host, allow_scope=True)
    except AddressError:
        return None


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
        if self._name_resolver is None:
            return await self._getaddrinfo_addresses(host, network)
        resolver = self._name_resolver
        kinds = {"ip": None, "ip4": [taddress.IPv4Address], "ip6": [taddress.IPv6Address]}
        collector = _Collector()
        resolver.resolveHostName(collector, host, 0, kinds[network], "TCP")
        found: list[Address] = await self._within(collector.done, host)
        if not found:
            raise NameNotFoundError(f"{host}: no{_FAMILY[network]} address (system resolver)")
        return order_addresses(found)

    async def _getaddrinfo_addresses(self, host: str, network: str) -> list[Address]:
        family = {"ip": socket.AF_UNSPEC, "ip4": socket.AF_INET, "ip6": socket.AF_INET6}[network]
        infos = await self._ask(host, network, family, 0)
        found = [a for a in (_from_sockaddr(info[4]) for info in infos) if a is not None]
        if not found:
            raise NameNotFoundError(f"{host}: no{_FAMILY[network]} address (system resolver)")
        return order_addresses(found)

    async def canonical_name(self, host: str) -> str:
        """The canonical name ``getaddrinfo`` reports for *host*, fully qualified."""
        infos = await self._ask(host, "ip", socket.AF_UNSPEC, socket.AI_CANONNAME)
        names = [info[3] for info in infos if info[3]]
        return absolute(names[0] if names else host)

    async def _ask(self, host: str, network: str, family: int, flags: int) -> Any:
        """``getaddrinfo(host, None, family, SOCK_STREAM, 0, flags)`` in the thread pool."""
        pending = deferToThreadPool(
            self._reactor,
            self._reactor.getThreadPool(),
            self._getaddrinfo,
            host,
            None,
            family,
            socket.SOCK_STREAM,
            0,
            flags,
        )
        try:
            return await self._within(pending, host)
        except socket.gaierror as e:
            raise _failure(host, e, network) from None

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
            raise _failure(host, e, missing="no name") from None
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
