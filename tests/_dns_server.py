"""
A ``twisted.names`` DNS server for the lookup tests, on loopback only.

:class:`Zone` answers from a small table of records and behaves like a
recursive server: a CNAME is followed inside the zone, so the answer holds the
whole chain (except for names listed in ``no_follow``, whose answer is the
CNAME alone). ``(name, type)`` pairs in ``drop`` are never answered. Names in
``refused`` get REFUSED, names in ``servfail`` get
SERVFAIL, unknown names NXDOMAIN. :class:`SilentServer` reads queries and
never answers.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol, ProcessProtocol
from twisted.internet.task import deferLater
from twisted.names import dns, server
from twisted.names.error import DomainError

_TYPES = {
    "A": (dns.A, dns.Record_A),
    "AAAA": (dns.AAAA, dns.Record_AAAA),
    "CNAME": (dns.CNAME, dns.Record_CNAME),
    "MX": (dns.MX, dns.Record_MX),
    "PTR": (dns.PTR, dns.Record_PTR),
    "TXT": (dns.TXT, dns.Record_TXT),
    "SRV": (dns.SRV, dns.Record_SRV),
    "NS": (dns.NS, dns.Record_NS),
    "SOA": (dns.SOA, dns.Record_SOA),
}


def _key(name: str | bytes) -> str:
    text = name.decode("ascii") if isinstance(name, bytes) else name
    return text.lower().rstrip(".")


class ServfailError(Exception):
    """Makes the test server answer SERVFAIL, without logging an error."""


class Zone:
    """
    An IResolver over a table ``{name: [(TYPE, value), ...]}``; a value is
    a name or an address, or the tuple of the record's fields
    (``("SRV", (10, 5, 5060, "sip.test"))``).
    """

    def __init__(
        self,
        records: dict[str, list[tuple[str, Any]]],
        *,
        no_follow: Iterable[str] = (),
        refused: Iterable[str] = (),
        servfail: Iterable[str] = (),
        drop: Iterable[tuple[str, int]] = (),
    ) -> None:
        self.records = {_key(name): rrs for name, rrs in records.items()}
        self.no_follow = {_key(n) for n in no_follow}
        self.refused = {_key(n) for n in refused}
        self.servfail = {_key(n) for n in servfail}
        self.drop = {(_key(n), t) for n, t in drop}
        self.queries: list[tuple[str, int]] = []

    def _rr(self, name: str, kind: str, value: Any) -> dns.RRHeader:
        code, record = _TYPES[kind]
        if isinstance(value, tuple):  # the record's fields: (10, "mx.test"), (b"a", b"b")
            payload = record(*value, ttl=60)
        elif kind == "MX":
            payload = record(10, value, ttl=60)
        else:
            payload = record(value, ttl=60)
        return dns.RRHeader(name=name, type=code, ttl=60, payload=payload)

    def query(self, query: dns.Query, timeout: Any = None) -> defer.Deferred[Any]:
        name = query.name.name.decode("ascii")
        self.queries.append((_key(name), query.type))
        if (_key(name), query.type) in self.drop:
            return defer.Deferred()  # never answered
        if _key(name) in self.servfail:
            return defer.fail(ServfailError(name))
        if _key(name) not in self.records:
            return defer.fail(DomainError(name))
        answers: list[dns.RRHeader] = []
        current, seen = name, set()
        while _key(current) in self.records and _key(current) not in seen:
            seen.add(_key(current))
            rrs = self.records[_key(current)]
            wanted = [self._rr(current, k, v) for k, v in rrs if _TYPES[k][0] == query.type]
            if wanted:
                answers.extend(wanted)
                break
            alias = next((v for k, v in rrs if k == "CNAME"), None)
            if alias is None:
                break
            answers.append(self._rr(current, "CNAME", alias))
            if _key(current) in self.no_follow:
                break
            current = alias
        return defer.succeed((answers, [], []))


class _Factory(server.DNSServerFactory):
    """Refuses the zone's ``refused`` names (RCODE 5)."""

    def __init__(self, zone: Zone) -> None:
        super().__init__(authorities=[zone])
        self.zone = zone

    def gotResolverError(self, failure: Any, protocol: Any, message: Any, address: Any) -> None:
        if failure.check(ServfailError):
            response = self._responseFromMessage(message=message, rCode=dns.ESERVER)
            self.sendReply(protocol, response, address)
            return
        super().gotResolverError(failure, protocol, message, address)

    def allowQuery(self, message: dns.Message, protocol: Any, address: Any) -> bool:
        return bool(message.queries) and _key(message.queries[0].name.name) not in self.zone.refused


class DNSServer:
    """A :class:`Zone` served over UDP and TCP on one loopback port."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.factory = _Factory(zone)
        self._ports: list[Any] = []

    def start(self, reactor: Any, interface: str = "127.0.0.1") -> tuple[str, int]:
        """Listen on *interface*, a free port; return ``(address, port)``."""
        for _ in range(20):
            udp = reactor.listenUDP(0, dns.DNSDatagramProtocol(self.factory), interface=interface)
            port = udp.getHost().port
            try:
                tcp = reactor.listenTCP(port, self.factory, interface=interface)
            except Exception:
                udp.stopListening()
                continue
            self._ports = [udp, tcp]
            return interface, port
        raise RuntimeError("no free port for UDP and TCP")

    async def stop(self) -> None:
        """Stop listening, and wait until every TCP connection is closed."""
        from twisted.internet import reactor

        for port in self._ports:
            await port.stopListening()
        for connection in list(self.factory.connections):
            connection.transport.loseConnection()
        for _ in range(100):
            if not self.factory.connections:
                break
            await deferLater(reactor, 0.01, lambda: None)


class SilentServer(DatagramProtocol):
    """Reads DNS queries on UDP and never answers; counts them."""

    def __init__(self) -> None:
        self.received = 0

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received += 1


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (closed again: a small race)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


class _Ended(ProcessProtocol):
    def __init__(self) -> None:
        self.ended: defer.Deferred[None] = defer.Deferred()

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(None)


async def start_twistd_dns(test: Any, twistd: str, zone_file: str, probe: str) -> int:
    """
    Run ``twistd dns --bindzone ZONE_FILE`` on 127.0.0.1 (authoritative only:
    without ``--recursive`` it forwards nothing), stopped at the end of *test*;
    return its port once it answers for the name *probe*.
    """
    from twisted.internet import reactor

    from netproto.lookup import Lookup, NameLookupError

    port = free_port()
    process = _Ended()
    transport = reactor.spawnProcess(
        process,
        twistd,
        [
            twistd,
            "-n",
            "--pidfile=",
            "-l",
            os.devnull,
            "dns",
            "--interface",
            "127.0.0.1",
            "--port",
            str(port),
            "--bindzone",
            zone_file,
        ],
        env=dict(os.environ),
    )

    async def stop() -> None:
        if not process.ended.called:
            transport.signalProcess("TERM")
        await process.ended

    test.addCleanup(lambda: defer.Deferred.fromCoroutine(stop()))
    lookup = Lookup(reactor, servers=[("127.0.0.1", port)], timeout=0.5)
    for _ in range(40):
        try:
            await lookup.lookup_host(probe)
            return port
        except NameLookupError:
            if process.ended.called:
                break
    raise RuntimeError("twistd dns did not start")


def system_files_skip_reason(*names: str) -> str | None:
    """
    Why a test must not ask the system resolver for *names*, or None.

    The system resolver may send a name to the DNS servers of resolv.conf,
    which may be off this machine. It is safe only when nsswitch.conf asks
    ``files`` first for hosts and /etc/hosts lists every name with an IPv4
    address (then the C library answers an AF_UNSPEC or AF_INET question from
    the file).
    """
    from netproto.lookup import HostsFile, NameLookupError

    try:
        with open("/etc/nsswitch.conf") as f:
            lines = [line.split("#")[0].split() for line in f]
    except OSError:
        return "no /etc/nsswitch.conf: the system might ask DNS before /etc/hosts"
    sources = next((fields[1:] for fields in lines if fields[:1] == ["hosts:"]), [])
    if sources[:1] != ["files"]:
        return "nsswitch.conf does not ask files first for hosts: the system might ask DNS"
    try:
        hosts = HostsFile.read("/etc/hosts")
    except NameLookupError as e:
        return str(e)
    for name in names:
        if not any(a.version == 4 for a in hosts.addresses(name)):
            return f"/etc/hosts has no IPv4 address for {name}: the system would ask DNS"
    return None
