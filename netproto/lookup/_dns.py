"""
Asking DNS servers, through :mod:`twisted.names.client`
(:class:`DNSAsker`): CNAME chains, parallel ``A`` and ``AAAA``, the error of
each response code.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

from twisted.internet import defer
from twisted.internet import error as terror
from twisted.names import client, dns
from twisted.names import error as dns_error

from netproto.lookup._errors import (
    CNAMELoopError,
    InvalidLookupError,
    LookupRefusedError,
    LookupTimeoutError,
    NameLookupError,
    NameNotFoundError,
    ServerFailureError,
)
from netproto.lookup._names import (
    DEFAULT_TIMEOUT,
    MAX_CNAME_HOPS,
    absolute,
    check_host_name,
    format_server,
    name_key,
    order_addresses,
)
from netproto.util import Address

__all__ = ["DNSAsker"]


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


class DNSAsker:
    """Asks the DNS *servers* through one Twisted DNS client; a lookup takes at most *timeout* s."""

    def __init__(self, servers: list[tuple[str, int]], reactor: Any, timeout: float) -> None:
        self.servers = servers
        self.timeout = timeout
        self._reactor = reactor
        self._client: _DNSClient | None = None

    async def ask(self, host: str, network: str) -> tuple[list[Address], str | None]:
        """
        The addresses of *host* for *network* (``A`` and ``AAAA`` asked in
        parallel for ``ip``), in the order of :func:`order_addresses`, and
        its canonical name (fully qualified), which a CNAME chain leading
        nowhere has without any address.
        """
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
            return order_addresses(addresses), absolute(canonical or host)
        # NXDOMAIN holds for every type: it wins over another lane's timeout.
        errors.sort(key=lambda error: not isinstance(error, NameNotFoundError))
        if errors:
            raise errors[0]
        family = {"ip": "", "ip4": " IPv4", "ip6": " IPv6"}[network]
        raise NameNotFoundError(f"{host}: no{family} address")

    async def ask_names(self, address: Address) -> list[str]:
        """
        The names of *address*: the ``PTR`` records of its reverse name
        (``in-addr.arpa``, ``ip6.arpa``), following a CNAME chain inside the
        answer (RFC 2317 delegations), fully qualified; names that are not
        valid host names are dropped.
        """
        records = await self.ask_records(address.reverse_pointer, dns.PTR, str(address))
        names: list[str] = []
        for payload in records:
            name = payload.name.name.decode("ascii", "backslashreplace")
            try:
                check_host_name(name)
            except InvalidLookupError:
                continue
            if absolute(name) not in names:
                names.append(absolute(name))
        if not names:
            raise NameNotFoundError(f"{address}: no valid name")
        return names

    async def ask_records(self, name: str, kind: int, shown: str | None = None) -> list[Any]:
        """
        The record data (``twisted.names`` payloads) of the *kind* records
        of *name*, in answer order, following a CNAME chain inside the
        answer. *shown* names the question in errors (default: *name*).

        :raises NameNotFoundError: the name does not exist, or has no such record.
        """
        deadline = self._reactor.seconds() + self.timeout
        try:
            answers, nxdomain = await self._query(name, kind, deadline)
        finally:
            if self._client is not None and self._client.connections:
                await self._client.close()
        owners = {name_key(name)}
        for _ in range(MAX_CNAME_HOPS):
            aliases = {
                name_key(rr.payload.name.name.decode("ascii", "backslashreplace"))
                for rr in answers
                if rr.type == dns.CNAME and _owner(rr) in owners
            }
            if aliases <= owners:
                break
            owners |= aliases
        found = [rr.payload for rr in answers if rr.type == kind and _owner(rr) in owners]
        if not found:
            label = shown or name
            if nxdomain and len(owners) == 1:
                missing = "no such host" if kind != dns.PTR else "no name"
                raise NameNotFoundError(f"{label}: {missing}")
            what = "name" if kind == dns.PTR else f"{dns.QUERY_TYPES.get(kind, kind)} record"
            raise NameNotFoundError(f"{label}: no {what}")
        return found

    async def _chase(
        self, name: str, kind: int, deadline: float
    ) -> tuple[list[str], list[Address]]:
        """
        Ask for *kind* records of *name*, following its CNAME chain; return the
        chain (*name* first) and the addresses at its end.
        """
        chain = [name]
        seen = {name_key(name)}
        current = name
        for _ in range(MAX_CNAME_HOPS + 1):
            answers, nxdomain = await self._query(current, kind, deadline)
            asked = current
            while True:
                key = name_key(current)
                found = [rr for rr in answers if rr.type == kind and _owner(rr) == key]
                if found:
                    return chain, [_rdata_address(kind, rr.payload) for rr in found]
                alias = next(
                    (rr for rr in answers if rr.type == dns.CNAME and _owner(rr) == key),
                    None,
                )
                if alias is None:
                    break
                target = alias.payload.name.name.decode("ascii", "backslashreplace")
                if name_key(target) in seen:
                    raise CNAMELoopError(f"{name}: CNAME loop at {target}")
                if len(chain) > MAX_CNAME_HOPS:
                    raise CNAMELoopError(f"{name}: more than {MAX_CNAME_HOPS} CNAME records")
                try:
                    check_host_name(target)
                except InvalidLookupError as e:
                    raise ServerFailureError(f"{name}: CNAME target {target!r}: {e}") from None
                seen.add(name_key(target))
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
        ask = {
            dns.A: self._client.lookupAddress,
            dns.AAAA: self._client.lookupIPV6Address,
            dns.PTR: self._client.lookupPointer,
            dns.MX: self._client.lookupMailExchange,
            dns.TXT: self._client.lookupText,
            dns.SRV: self._client.lookupService,
            dns.NS: self._client.lookupNameservers,
            dns.SOA: self._client.lookupAuthority,
        }[kind]
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


_RCODE_ERRORS: tuple[tuple[type[Exception], type[NameLookupError], str], ...] = (
    (dns_error.DNSQueryRefusedError, LookupRefusedError, "query refused by {where}"),
    (terror.ConnectionRefusedError, LookupRefusedError, "connection refused by {where}"),
    (dns_error.DNSServerError, ServerFailureError, "server failure (SERVFAIL) from {where}"),
    (dns_error.DNSFormatError, ServerFailureError, "{where} could not parse the query (FORMERR)"),
    (
        dns_error.DNSNotImplementedError,
        ServerFailureError,
        "{where} does not implement the query (NOTIMP)",
    ),
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
    return name_key(record.name.name.decode("ascii", "backslashreplace"))


def _rdata_address(kind: int, payload: Any) -> Address:
    """The address of an ``A`` or ``AAAA`` record's data."""
    if kind == dns.A:
        return IPv4Address(payload.address)
    return IPv6Address(payload.address)
