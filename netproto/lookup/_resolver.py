"""
:class:`Lookup` and the one-call lookups: where a name is looked up (the
system, or a hosts file and DNS servers) and how an answer is picked.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.interfaces import IHostnameResolver
from twisted.internet.threads import deferToThreadPool

from netproto.lookup._errors import (
    InvalidLookupError,
    LookupTimeoutError,
    NameNotFoundError,
)
from netproto.lookup._files import HostsFile, parse_resolv_conf, read_text
from netproto.lookup._names import (
    DEFAULT_TIMEOUT,
    PORT_NETWORKS,
    absolute,
    check_host_name,
    check_network,
    literal,
    name_key,
    order_addresses,
    pick_address,
    service_name,
    service_port,
)
from netproto.lookup._records import MX, NS, SOA, SRV, order_mx, order_srv, srv_name, txt_text
from netproto.lookup._system import SystemAsker
from netproto.util import Address, positive_seconds

if TYPE_CHECKING:
    from netproto.lookup._dns import DNSAsker

__all__ = ["SYSTEM_RESOLV_CONF", "Answer", "Lookup"]

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
        if end is not None and name_key(end) != name_key(self.name):
            return NameNotFoundError(
                f"{self.name}: no address (its CNAME chain ends at {end}, which has none)"
            )
        return NameNotFoundError(f"{self.name}: no address")


def _check_name(host: str) -> None:
    """:func:`check_host_name`, its message naming *host*."""
    try:
        check_host_name(host)
    except InvalidLookupError as e:
        raise InvalidLookupError(f"{host}: {e}" if host else str(e)) from None


def _name(data: Any) -> str:
    """A domain name of record data (``twisted.names`` ``Name``), fully qualified."""
    return absolute(data.name.decode("ascii", "backslashreplace"))


async def _in_thread(reactor: Any, timeout: float, what: str, function: Any, *args: Any) -> Any:
    r"""
    *function(\*args)* in the reactor's thread pool (the services database
    may be remote under some ``nsswitch.conf``), for at most *timeout* seconds.
    """
    pending = deferToThreadPool(reactor, reactor.getThreadPool(), function, *args)
    pending.addTimeout(timeout, reactor)
    try:
        return await pending
    except defer.TimeoutError:
        raise LookupTimeoutError(
            f"{what}: the services database did not answer within {timeout:g} s"
        ) from None


def _check_timeout(timeout: float) -> float:
    try:
        return positive_seconds(timeout)
    except ValueError as e:
        raise InvalidLookupError(f"timeout {e}") from None


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
        file read: 50,000 lines take 0.15 to 0.3 s here).
    :param resolv_conf: the ``resolv.conf`` whose name servers are asked
        when *servers* is empty and *hosts* is given; ``/etc/resolv.conf``
        by default.
    :param timeout: seconds each lookup may take, all queries included.
    :param name_resolver: an :class:`IHostnameResolver` for the addresses of
        system lookups (its failures are all "no address"); by default they
        come from *getaddrinfo*.
    :param getaddrinfo: the function system lookups call in the reactor's
        thread pool, for addresses (unless *name_resolver*) and canonical
        names.
    :param getnameinfo: the function system lookups of an address's names
        call in the reactor's thread pool.
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
        getnameinfo: Any = socket.getnameinfo,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self._reactor = reactor
        self.timeout = _check_timeout(timeout)
        self.hosts = HostsFile.read(hosts) if isinstance(hosts, str) else hosts
        self.servers: list[tuple[str, int]] = [(h, p) for h, p in servers]
        self._resolv_conf = resolv_conf
        if not self.servers and (self.hosts is not None or resolv_conf is not None):
            self.servers = parse_resolv_conf(read_text(resolv_conf or SYSTEM_RESOLV_CONF))
        self._system = SystemAsker(reactor, self.timeout, name_resolver, getaddrinfo, getnameinfo)
        self._dns: DNSAsker | None = None

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
        address = literal(host)
        if address is not None:
            return Answer(host, (address,), None, "literal")
        _check_name(host)
        if self.hosts is not None and host in self.hosts:
            listed = tuple(order_addresses(self.hosts.addresses(host)))
            return Answer(host, listed, self.hosts.canonical_name(host), "hosts")
        if self.servers:
            asked, canonical = await self._dns_asker().ask(host, network)
            return Answer(host, tuple(asked), canonical, "dns")
        found = await self._system.addresses(host, network)
        return Answer(host, tuple(found), None, "system")

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
        if literal(host) is not None:
            raise InvalidLookupError(f"{host} is an IP address, not a host name")
        _check_name(host)
        if self.hosts is not None and host in self.hosts:
            found = self.hosts.canonical_name(host)
            assert found is not None
            return found
        if self.servers:
            _addresses, canonical = await self._dns_asker().ask(host, "ip")
            assert canonical is not None
            return canonical
        return await self._system.canonical_name(host)

    async def lookup_addr(self, address: str) -> list[str]:
        """
        The names of *address*, an IP address literal (Go's ``LookupAddr``),
        fully qualified: from the hosts file when it lists the address (every
        name of its lines, the canonical one first), else the ``PTR`` records
        of its reverse name from the DNS servers, else the one name the
        system's ``getnameinfo`` finds. Names that are not valid host names
        are dropped.

        :raises InvalidLookupError: *address* is not an IP address (nothing
            was sent).
        :raises NameNotFoundError: the address has no name.
        """
        if not isinstance(address, str) or literal(address) is None:
            raise InvalidLookupError(f"{address}: not an IP address")
        parsed = literal(address)
        assert parsed is not None
        if self.hosts is not None:
            listed = self.hosts.names(parsed)
            if listed:
                return list(listed)
        if self.servers:
            return await self._dns_asker().ask_names(parsed)
        return await self._system.names(parsed)

    async def lookup_port(self, network: str, service: str) -> int:
        """
        The port of *service* for *network* (Go's ``LookupPort``,
        :func:`service_port`): a port number is answered at once, a name is
        looked up in the services database, in the reactor's thread pool
        (it may be remote under some ``nsswitch.conf``) within the timeout.
        """
        check_network(network, PORT_NETWORKS)
        if isinstance(service, str) and service.isascii() and service.isdigit():
            return service_port(network, service)
        port: int = await _in_thread(
            self._reactor, self.timeout, f"{service}/{network[:3]}", service_port, network, service
        )
        return port

    async def lookup_service(self, network: str, port: int | str) -> str:
        """
        The name of the service on *port* for *network* (the reverse of
        :func:`lookup_port`): ``tcp 23`` is ``telnet``. From the services
        database, read in the reactor's thread pool within the timeout.

        :raises InvalidLookupError: unknown network, or not a port number.
        :raises ServiceNotFoundError: the database names no service on that port.
        """
        name: str = await _in_thread(
            self._reactor, self.timeout, f"{port}/{network[:3]}", service_name, network, port
        )
        return name

    async def lookup_mx(self, name: str) -> list[MX]:
        """
        The mail exchangers of *name* (Go's ``LookupMX``), by preference,
        lowest first (equal preferences in random order).
        """
        found = await self._records(name, "MX")
        return order_mx(MX(_name(p.name), p.preference) for p in found)

    async def lookup_txt(self, name: str) -> list[str]:
        """
        The TXT records of *name* (Go's ``LookupTXT``), each one string: its
        character strings joined. :meth:`lookup_txt_strings` keeps them apart.
        """
        return [txt_text(strings) for strings in await self.lookup_txt_strings(name)]

    async def lookup_txt_strings(self, name: str) -> list[tuple[bytes, ...]]:
        """The TXT records of *name*, each the tuple of its character strings, as sent."""
        return [tuple(p.data) for p in await self._records(name, "TXT")]

    async def lookup_srv(self, service: str, proto: str, name: str) -> tuple[str, list[SRV]]:
        """
        The SRV records of ``_service._proto.name`` (Go's ``LookupSRV``; with
        *service* and *proto* empty, of *name* itself): the name asked,
        fully qualified, and the records by priority, each priority in the
        weighted random order of RFC 2782.
        """
        asked = srv_name(service, proto, name)
        found = await self._records(asked, "SRV")
        records = [SRV(_name(p.target), p.port, p.priority, p.weight) for p in found]
        return absolute(asked), order_srv(records)

    async def lookup_ns(self, name: str) -> list[NS]:
        """The name servers of the zone *name* (Go's ``LookupNS``), in answer order."""
        return [NS(_name(p.name)) for p in await self._records(name, "NS")]

    async def lookup_soa(self, name: str) -> SOA:
        """
        The SOA record of the zone *name* (at its apex; Go has no such lookup).

        :raises NameNotFoundError: *name* does not exist, or is not a zone's apex.
        """
        p = (await self._records(name, "SOA"))[0]
        return SOA(
            _name(p.mname), _name(p.rname), p.serial, p.refresh, p.retry, p.expire, p.minimum
        )

    async def _records(self, name: str, kind: str) -> list[Any]:
        """
        The ``twisted.names`` payloads of *name*'s *kind* records, from the DNS
        servers: those given, or else those of ``resolv.conf`` (the system has
        no call for these records), never from a hosts file.
        """
        from twisted.names import dns

        _check_name(name)
        if not self.servers:
            self.servers = parse_resolv_conf(read_text(self._resolv_conf or SYSTEM_RESOLV_CONF))
        return await self._dns_asker().ask_records(name, getattr(dns, kind))

    def _dns_asker(self) -> DNSAsker:
        """The asker of :attr:`servers` (made again if they were changed)."""
        if self._dns is None or self._dns.servers != self.servers:
            # Imported here: a lookup through the system never loads twisted.names.
            from netproto.lookup._dns import DNSAsker

            self._dns = DNSAsker(list(self.servers), self._reactor, self.timeout)
        return self._dns
