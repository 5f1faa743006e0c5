"""
The one-call lookups: each makes a :class:`~netproto.lookup.Lookup` of its
keyword arguments and asks it one question, as Go's package-level functions
(``net.LookupHost``, ``net.LookupMX``...) use the default resolver.
"""

from __future__ import annotations

from typing import Any

from netproto.lookup._files import HostsFile
from netproto.lookup._names import DEFAULT_TIMEOUT
from netproto.lookup._records import MX, NS, SOA, SRV
from netproto.lookup._resolver import Lookup
from netproto.util import Address

__all__ = [
    "lookup_addr",
    "lookup_cname",
    "lookup_host",
    "lookup_mx",
    "lookup_ns",
    "lookup_port",
    "lookup_service",
    "lookup_soa",
    "lookup_srv",
    "lookup_txt",
    "resolve_ip",
]


async def resolve_ip(
    host: str,
    network: str = "ip",
    *,
    reactor: Any = None,
    servers: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
    hosts: str | HostsFile | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Address:
    """:meth:`Lookup.resolve_ip` with a :class:`Lookup` made of the keyword arguments."""
    lookup = Lookup(reactor, servers=servers, hosts=hosts, timeout=timeout)
    return await lookup.resolve_ip(host, network)


async def lookup_host(
    host: str,
    *,
    reactor: Any = None,
    servers: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
    hosts: str | HostsFile | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Address]:
    """:meth:`Lookup.lookup_host` with a :class:`Lookup` made of the keyword arguments."""
    lookup = Lookup(reactor, servers=servers, hosts=hosts, timeout=timeout)
    return await lookup.lookup_host(host)


async def lookup_cname(
    host: str,
    *,
    reactor: Any = None,
    servers: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
    hosts: str | HostsFile | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """:meth:`Lookup.lookup_cname` with a :class:`Lookup` made of the keyword arguments."""
    lookup = Lookup(reactor, servers=servers, hosts=hosts, timeout=timeout)
    return await lookup.lookup_cname(host)


async def lookup_addr(
    address: str,
    *,
    reactor: Any = None,
    servers: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
    hosts: str | HostsFile | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """:meth:`Lookup.lookup_addr` with a :class:`Lookup` made of the keyword arguments."""
    lookup = Lookup(reactor, servers=servers, hosts=hosts, timeout=timeout)
    return await lookup.lookup_addr(address)


async def lookup_port(
    network: str, service: str, *, reactor: Any = None, timeout: float = DEFAULT_TIMEOUT
) -> int:
    """:meth:`Lookup.lookup_port` (the port of a service) of a new :class:`Lookup`."""
    return await Lookup(reactor, timeout=timeout).lookup_port(network, service)


async def lookup_service(
    network: str, port: int | str, *, reactor: Any = None, timeout: float = DEFAULT_TIMEOUT
) -> str:
    """:meth:`Lookup.lookup_service` (the service name on a port) of a new :class:`Lookup`."""
    return await Lookup(reactor, timeout=timeout).lookup_service(network, port)


def _asker(reactor: Any, servers: Any, resolv_conf: str | None, timeout: float) -> Lookup:
    return Lookup(reactor, servers=servers, resolv_conf=resolv_conf, timeout=timeout)


async def lookup_mx(
    name: str,
    *,
    reactor: Any = None,
    servers: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
    resolv_conf: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[MX]:
    """
    :meth:`Lookup.lookup_mx` of a new :class:`Lookup` asking *servers*, or
    else the name servers of *resolv_conf* (``/etc/resolv.conf``).
    """
    return await _asker(reactor, servers, resolv_conf, timeout).lookup_mx(name)


async def lookup_txt(
    name: str,
    *,
    reactor: Any = None,
    servers: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
    resolv_conf: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """:meth:`Lookup.lookup_txt`, as :func:`lookup_mx` asks."""
    return await _asker(reactor, servers, resolv_conf, timeout).lookup_txt(name)


async def lookup_srv(
    service: str,
    proto: str,
    name: str,
    *,
    reactor: Any = None,
    servers: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
    resolv_conf: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[str, list[SRV]]:
    """:meth:`Lookup.lookup_srv`, as :func:`lookup_mx` asks."""
    return await _asker(reactor, servers, resolv_conf, timeout).lookup_srv(service, proto, name)


async def lookup_ns(
    name: str,
    *,
    reactor: Any = None,
    servers: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
    resolv_conf: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[NS]:
    """:meth:`Lookup.lookup_ns`, as :func:`lookup_mx` asks."""
    return await _asker(reactor, servers, resolv_conf, timeout).lookup_ns(name)


async def lookup_soa(
    name: str,
    *,
    reactor: Any = None,
    servers: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
    resolv_conf: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> SOA:
    """:meth:`Lookup.lookup_soa`, as :func:`lookup_mx` asks."""
    return await _asker(reactor, servers, resolv_conf, timeout).lookup_soa(name)
