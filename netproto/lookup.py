"""
Name and service lookups, asynchronous, never blocking the reactor: the
seed's ResolveIP, LookupHost and LookupPort, and Go's LookupCNAME.

A :class:`Lookup` answers from one of two sources, chosen when it is made:

- **the system** (no ``servers``, no ``hosts``): addresses come from the
  reactor's :class:`~twisted.internet.interfaces.IHostnameResolver`
  (``reactor.nameResolver``, which calls ``getaddrinfo`` in a thread), so
  ``nsswitch.conf``, the system hosts file, ``resolv.conf`` and its search
  list all apply; canonical names come from ``getaddrinfo`` with
  ``AI_CANONNAME``, also in the reactor's thread pool.
- **a hosts file and DNS servers** (``servers``, ``hosts`` or
  ``resolv_conf`` given): a name listed in the hosts file is answered from the
  file alone; any other name is asked of the DNS servers through
  :mod:`twisted.names.client` (the given ``servers``, or else the
  ``nameserver`` lines of ``resolv_conf``, by default ``/etc/resolv.conf``),
  as an absolute name (no search list). ``A`` and ``AAAA`` are asked in
  parallel; CNAME chains are followed, within an answer and by asking again
  for the chain's last name, for at most :data:`MAX_CNAME_HOPS` records, and
  loops are detected.

In both, an IP address literal is answered without any query, and an IPv6
zone (``fe80::1%lo``) is kept, as Go's ``IPAddr`` keeps it. Every answer lists
IPv4 addresses first, then IPv6, each family in the order its source gave,
without duplicates (:func:`order_addresses`); :meth:`Lookup.resolve_ip` picks
one address from that list as Go's ``ResolveIPAddr`` does
(:func:`pick_address`).

Failures raise a subclass of :class:`NameLookupError` with a one-line message:
:class:`InvalidLookupError` (bad input; nothing was sent), :class:`NameNotFoundError`,
:class:`ServiceNotFoundError`, :class:`LookupTimeoutError`, :class:`LookupRefusedError`,
:class:`ServerFailureError`, :class:`CNAMELoopError`.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from twisted.internet import address as taddress
from twisted.internet import defer
from twisted.internet import error as terror
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IResolutionReceiver,
)
from twisted.internet.threads import deferToThreadPool
from twisted.names import client, dns
from twisted.names import error as dns_error
from zope.interface import implementer

from netproto._names import (
    DEFAULT_DNS_PORT,
    IP_NETWORKS,
    MAX_CNAME_HOPS,
    PORT_NETWORKS,
    CNAMELoopError,
    HostsFile,
    InvalidLookupError,
    LookupRefusedError,
    LookupTimeoutError,
    NameLookupError,
    NameNotFoundError,
    ServerFailureError,
    ServiceNotFoundError,
    _key,
    absolute,
    check_host_name,
    check_network,
    format_server,
    order_addresses,
    parse_resolv_conf,
    parse_server,
    pick_address,
    service_port,
)
from netproto.util import Address, AddressError, parse_ip

__all__ = [
    "DEFAULT_DNS_PORT",
    "DEFAULT_TIMEOUT",
    "IP_NETWORKS",
    "MAX_CNAME_HOPS",
    "PORT_NETWORKS",
    "Answer",
    "CNAMELoopError",
    "HostsFile",
    "InvalidLookupError",
    "Lookup",
    "LookupRefusedError",
    "LookupTimeoutError",
    "NameLookupError",
    "NameNotFoundError",
    "ServerFailureError",
    "ServiceNotFoundError",
    "check_host_name",
    "format_server",
    "lookup_cname",
    "lookup_host",
    "lookup_port",
    "order_addresses",
    "parse_resolv_conf",
    "parse_server",
    "pick_address",
    "resolve_ip",
    "service_port",
]

DEFAULT_TIMEOUT = 5.0
"""Seconds a lookup may take, all queries, retries and CNAME hops included."""

SYSTEM_RESOLV_CONF = "/etc/resolv.conf"


@dataclass(frozen=True)
class Answer:
    """What one lookup of a name found."""

    name: str
    """The name or literal looked up, as given."""

    addresses: tuple[Address, ...]
    """Its addresses, in the order of :func:`order_addresses`; may be empty."""

    canonical_name: str | None
    """
    The canonical name, fully qualified (``www.example.test.``), when the
    source tells it: the end of the CNAME chain (the name itself when it has
    no CNAME) from DNS, the first name of its line from a hosts file; ``None``
    for literals and system lookups of addresses.
    """

    source: str
    """Where the answer came from: ``literal``, ``hosts``, ``dns`` or ``system``."""

    def pick(self, network: str) -> Address:
        """
        The address Go's ``ResolveIPAddr`` picks for *network*
        (:func:`pick_address`): for ``ip``, the first IPv4 address, else the
        first IPv6 one.

        :raises NameNotFoundError: no address suits *network*.
        :raises InvalidLookupError: a literal of the other family.
        """
        if not self.addresses:
            raise self.no_address()
        try:
            return pick_address(self.addresses, network, self.name)
        except NameNotFoundError:
            if self.source == "literal":
                literal = self.addresses[0]
                kind = f"an IPv{literal.version} address"
                if getattr(literal, "ipv4_mapped", None) is not None:
                    kind = "an IPv4-mapped address (IPv4, as in Go)"
                raise InvalidLookupError(f"{self.name} is {kind}, not {network}") from None
            raise

    def no_address(self) -> NameNotFoundError:
        """The error for an answer without addresses, saying where a CNAME chain ended."""
        end = self.canonical_name
        if end is not None and _key(end) != _key(self.name):
            return NameNotFoundError(
                f"{self.name}: no address (its CNAME chain ends at {end}, which has none)"
            )
        return NameNotFoundError(f"{self.name}: no address")


def _literal(text: str) -> Address | None:
    """
    The address *text* writes, or ``None`` if it is meant as a name. Text
    that looks like an address (only digits and dots, or any ``:`` or ``%``)
    but is not a valid one raises :class:`InvalidLookupError`.
    """
    if not isinstance(text, str):
        raise InvalidLookupError(f"expected a host name as text, got {type(text).__name__}")
    try:
        return parse_ip(text, allow_scope=True)
    except AddressError as e:
        if ":" in text or "%" in text or (text and all(c.isdigit() or c == "." for c in text)):
            raise InvalidLookupError(f"{text}: {e}") from None
        return None


def _check_name(host: str) -> None:
    """:func:`check_host_name`, its message naming *host*."""
    try:
        check_host_name(host)
    except InvalidLookupError as e:
        raise InvalidLookupError(f"{host}: {e}") from None


def _check_timeout(timeout: float) -> float:
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise InvalidLookupError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


class _DNSClient(client.Resolver):
    """
    Twisted's DNS client, closing what it leaves open: a truncated UDP answer
    makes it ask again over TCP and keep that connection; :meth:`close`
    closes such connections and fires when they are gone. Its TCP queries
    are bounded by :attr:`tcp_timeout`, not a fixed 10 s.
    """

    tcp_timeout: float = DEFAULT_TIMEOUT

    def __init__(self, servers: list[tuple[str, int]], reactor: Any) -> None:
        super().__init__(servers=servers, reactor=reactor)
        self._closing: dict[object, defer.Deferred[None]] = {}

    def queryTCP(self, queries: Any, timeout: float | None = None) -> Any:
        return super().queryTCP(queries, self.tcp_timeout)

    def connectionLost(self, protocol: Any) -> None:
        super().connectionLost(protocol)
        waiting = self._closing.pop(protocol, None)
        if waiting is not None:
            waiting.callback(None)

    def close(self) -> defer.Deferred[Any]:
        waits = []
        for protocol in list(self.connections):
            waiting: defer.Deferred[None] = defer.Deferred()
            self._closing[protocol] = waiting
            waits.append(waiting)
            protocol.transport.loseConnection()
        return defer.DeferredList(waits)


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


def _rdata_address(kind: int, payload: Any) -> Address:
    """The address of an ``A`` or ``AAAA`` record's data."""
    if kind == dns.A:
        return IPv4Address(payload.address)
    return IPv6Address(payload.address)


class Lookup:
    """
    Looks names up in one configured place (see the module's description).

    :param reactor: provides time, UDP, TCP and threads; the global reactor by
        default.
    :param servers: DNS servers, ``(address, port)``, asked in this order
        (:func:`parse_server` makes them from ``ADDR[:PORT]``). With servers
        and no *hosts*, no hosts file is consulted: the servers' answer is
        what you get.
    :param hosts: a hosts file (a path, or a parsed :class:`HostsFile`)
        consulted before DNS. A path is read and parsed here, once (a local
        file read: 50,000 lines take about 0.15 s).
    :param resolv_conf: the ``resolv.conf`` whose name servers are asked
        when *servers* is empty and *hosts* is given; ``/etc/resolv.conf``
        by default.
    :param timeout: seconds each lookup may take, all queries included.
    :param name_resolver: the :class:`IHostnameResolver` of system lookups;
        ``reactor.nameResolver`` by default.
    :param getaddrinfo: the function system canonical-name lookups call in
        the reactor's thread pool.
    :raises InvalidLookupError: a bad timeout, or an unreadable hosts file.
    """

    def __init__(
        self,
        reactor: Any = None,
        *,
        servers: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
        hosts: str | HostsFile | None = None,
        resolv_conf: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        name_resolver: IHostnameResolver | None = None,
        getaddrinfo: Any = socket.getaddrinfo,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self._reactor = reactor
        self.timeout = _check_timeout(timeout)
        self.hosts = HostsFile.read(hosts) if isinstance(hosts, str) else hosts
        self.servers: list[tuple[str, int]] = [(h, p) for h, p in servers]
        if not self.servers and (self.hosts is not None or resolv_conf is not None):
            self.servers = parse_resolv_conf(_read_text(resolv_conf or SYSTEM_RESOLV_CONF))
        self._name_resolver = name_resolver
        self._getaddrinfo = getaddrinfo
        self._client: _DNSClient | None = None

    @property
    def uses_dns(self) -> bool:
        """Whether names not in the hosts file go to DNS servers (else to the system)."""
        return bool(self.servers)

    async def lookup(self, host: str, network: str = "ip") -> Answer:
        """
        Look *host* up for *network* (``ip``: both families; ``ip4``: IPv4
        only, ``ip6``: IPv6 only, which is all that is asked for). An
        :class:`Answer` may have no address (a name whose CNAME leads nowhere);
        the other methods turn that into :class:`NameNotFoundError`.
        """
        check_network(network)
        literal = _literal(host)
        if literal is not None:
            return Answer(host, (literal,), None, "literal")
        _check_name(host)
        if self.hosts is not None and host in self.hosts:
            addresses = tuple(order_addresses(self.hosts.addresses(host)))
            return Answer(host, addresses, self.hosts.canonical_name(host), "hosts")
        if self.servers:
            return await self._dns_lookup(host, network)
        return await self._system_lookup(host, network)

    async def resolve_ip(self, host: str, network: str = "ip") -> Address:
        """
        One address of *host* for *network*, picked as Go's ``ResolveIPAddr``
        does (:func:`pick_address`): for ``ip``, the first IPv4 address, else
        the first IPv6 one.
        """
        return (await self.lookup(host, network)).pick(network)

    async def lookup_host(self, host: str) -> list[Address]:
        """
        All addresses of *host*, IPv4 then IPv6, without duplicates (Go's
        ``LookupHost``); a literal is its own only address.
        """
        answer = await self.lookup(host, "ip")
        if not answer.addresses:
            raise answer.no_address()
        return list(answer.addresses)

    async def lookup_cname(self, host: str) -> str:
        """
        The canonical name of *host*, fully qualified (Go's ``LookupCNAME``):
        the last name of its CNAME chain, or the name itself when it has no
        CNAME but has addresses. A CNAME whose target does not exist still
        has that target as canonical name.

        :raises InvalidLookupError: *host* is an IP address.
        :raises NameNotFoundError: the name does not exist or has no address
            records and no CNAME.
        """
        if _literal(host) is not None:
            raise InvalidLookupError(f"{host} is an IP address, not a host name")
        _check_name(host)
        if self.hosts is not None and host in self.hosts:
            found = self.hosts.canonical_name(host)
            assert found is not None
            return found
        if self.servers:
            answer = await self._dns_lookup(host, "ip")
            assert answer.canonical_name is not None
            return answer.canonical_name
        return await self._system_cname(host)

    # DNS

    async def _dns_lookup(self, host: str, network: str) -> Answer:
        deadline = self._reactor.seconds() + self.timeout
        kinds = {"ip": (dns.A, dns.AAAA), "ip4": (dns.A,), "ip6": (dns.AAAA,)}[network]
        outcomes: list[tuple[list[str], list[Address]] | NameLookupError] = []
        try:
            if len(kinds) == 1:
                try:
                    outcomes.append(await self._chase(host, kinds[0], deadline))
                except NameLookupError as e:
                    outcomes.append(e)
            else:
                lanes = [
                    defer.Deferred.fromCoroutine(self._chase(host, kind, deadline))
                    for kind in kinds
                ]
                result: Any
                for ok, result in await defer.DeferredList(lanes, consumeErrors=True):
                    outcomes.append(result if ok else result.value)
        finally:
            if self._client is not None and self._client.connections:
                await self._client.close()
        addresses: list[Address] = []
        canonical: str | None = None
        errors: list[Exception] = []
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                errors.append(outcome)
                continue
            chain, found = outcome
            addresses.extend(found)
            if canonical is None and (found or len(chain) > 1):
                canonical = chain[-1]
        if addresses or canonical is not None:
            return Answer(
                host, tuple(order_addresses(addresses)), absolute(canonical or host), "dns"
            )
        # NXDOMAIN holds for every type: it wins over another lane's timeout.
        errors.sort(key=lambda error: not isinstance(error, NameNotFoundError))
        if errors:
            raise errors[0]
        family = {"ip": "", "ip4": " IPv4", "ip6": " IPv6"}[network]
        raise NameNotFoundError(f"{host}: no{family} address")

    async def _chase(
        self, name: str, kind: int, deadline: float
    ) -> tuple[list[str], list[Address]]:
        """
        Ask for *kind* records of *name*, following its CNAME chain; return the
        chain (*name* first) and the addresses at its end.
        """
        chain = [name]
        seen = {_key(name)}
        current = name
        for _ in range(MAX_CNAME_HOPS + 1):
            answers, nxdomain = await self._query(current, kind, deadline)
            asked = current
            while True:
                found = [rr for rr in answers if rr.type == kind and _owner(rr) == _key(current)]
                if found:
                    return chain, [_rdata_address(kind, rr.payload) for rr in found]
                alias = next(
                    (rr for rr in answers if rr.type == dns.CNAME and _owner(rr) == _key(current)),
                    None,
                )
                if alias is None:
                    break
                target = alias.payload.name.name.decode("ascii", "backslashreplace")
                if _key(target) in seen:
                    raise CNAMELoopError(f"{name}: CNAME loop at {target}")
                if len(chain) > MAX_CNAME_HOPS:
                    raise CNAMELoopError(f"{name}: more than {MAX_CNAME_HOPS} CNAME records")
                try:
                    check_host_name(target)
                except InvalidLookupError as e:
                    raise ServerFailureError(f"{name}: CNAME target {target!r}: {e}") from None
                seen.add(_key(target))
                chain.append(target)
                current = target
            if current == asked or nxdomain:
                if nxdomain and len(chain) == 1:
                    raise NameNotFoundError(f"{name}: no such host")
                return chain, []
        raise CNAMELoopError(f"{name}: more than {MAX_CNAME_HOPS} CNAME records")

    async def _query(self, name: str, kind: int, deadline: float) -> tuple[list[Any], bool]:
        """
        One question to the servers: its answer records and whether the name
        does not exist (NXDOMAIN, whose answer may still hold CNAME records).
        """
        remaining = deadline - self._reactor.seconds()
        if remaining <= 0:
            raise _query_error(defer.TimeoutError(), name, self._where(), self.timeout)
        if self._client is None:
            self._client = _DNSClient(self.servers, self._reactor)
        share = remaining / len(self.servers)
        attempts = (share * 0.2, share * 0.3, share * 0.5)
        self._client.tcp_timeout = remaining
        ask = self._client.lookupAddress if kind == dns.A else self._client.lookupIPV6Address
        try:
            answers, _authority, _additional = await ask(name, attempts)
        except dns_error.DNSNameError as e:
            message = e.args[0] if e.args else None
            return (list(message.answers) if isinstance(message, dns.Message) else []), True
        except Exception as e:
            raise _query_error(e, name, self._where(), self.timeout) from None
        return list(answers), False

    def _where(self) -> str:
        return ", ".join(format_server(s) for s in self.servers)

    # The system

    async def _system_lookup(self, host: str, network: str) -> Answer:
        resolver = self._name_resolver or self._reactor.nameResolver
        kinds = {"ip": None, "ip4": [taddress.IPv4Address], "ip6": [taddress.IPv6Address]}
        collector = _Collector()
        resolver.resolveHostName(collector, host, 0, kinds[network], "TCP")
        done = collector.done
        done.addTimeout(self.timeout, self._reactor)
        try:
            found = await done
        except defer.TimeoutError:
            raise LookupTimeoutError(
                f"{host}: the system resolver did not answer within {self.timeout:g} s"
            ) from None
        if not found:
            family = {"ip": "", "ip4": " IPv4", "ip6": " IPv6"}[network]
            raise NameNotFoundError(f"{host}: no{family} address (system resolver)")
        return Answer(host, tuple(order_addresses(found)), None, "system")

    async def _system_cname(self, host: str) -> str:
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
        pending.addTimeout(self.timeout, self._reactor)
        try:
            infos = await pending
        except defer.TimeoutError:
            raise LookupTimeoutError(
                f"{host}: the system resolver did not answer within {self.timeout:g} s"
            ) from None
        except socket.gaierror as e:
            not_found = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
            if e.errno in not_found:
                raise NameNotFoundError(f"{host}: no such host (system resolver)") from None
            raise ServerFailureError(f"{host}: system resolver: {e.strerror or e}") from None
        names = [info[3] for info in infos if info[3]]
        return absolute(names[0] if names else host)


_RCODE_ERRORS: tuple[tuple[type[Exception], type[NameLookupError], str], ...] = (
    (dns_error.DNSQueryRefusedError, LookupRefusedError, "query refused by {where}"),
    (terror.ConnectionRefusedError, LookupRefusedError, "connection refused by {where}"),
    (dns_error.DNSServerError, ServerFailureError, "server failure (SERVFAIL) from {where}"),
    (dns_error.DNSFormatError, ServerFailureError, "{where} could not parse the query (FORMERR)"),
    (dns_error.DNSNotImplementedError, ServerFailureError,
     "{where} does not implement the query (NOTIMP)"),
    (dns_error.DNSUnknownError, ServerFailureError, "unexpected response code from {where}"),
)


def _query_error(e: Exception, name: str, where: str, timeout: float) -> Exception:
    """The :class:`NameLookupError` for what a DNS query raised."""
    if isinstance(e, defer.TimeoutError):
        return LookupTimeoutError(f"{name}: no answer from {where} within {timeout:g} s")
    for kind, error, message in _RCODE_ERRORS:
        if isinstance(e, kind):
            return error(f"{name}: " + message.format(where=where))
    if isinstance(e, (terror.ConnectError, OSError)):
        return ServerFailureError(f"{name}: {where}: {e}")
    return e


def _owner(record: Any) -> str:
    return _key(record.name.name.decode("ascii", "backslashreplace"))


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise InvalidLookupError(f"cannot read {path}: {e.strerror or e}") from None


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


async def lookup_port(
    network: str, service: str, *, reactor: Any = None, timeout: float = DEFAULT_TIMEOUT
) -> int:
    """
    :func:`service_port` without blocking the reactor: a port number is
    answered at once; a name is looked up in the reactor's thread pool (the
    services database may be remote under some ``nsswitch.conf``), for at
    most *timeout* seconds.
    """
    _check_timeout(timeout)
    check_network(network, PORT_NETWORKS)
    if isinstance(service, str) and service.isascii() and service.isdigit():
        return service_port(network, service)
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    pending = deferToThreadPool(reactor, reactor.getThreadPool(), service_port, network, service)
    pending.addTimeout(timeout, reactor)
    try:
        port: int = await pending
    except defer.TimeoutError:
        raise LookupTimeoutError(
            f"{service}/{network[:3]}: the services database did not answer "
            f"within {timeout:g} s"
        ) from None
    return port
