"""
:mod:`netproto.lookup` against a ``twisted.names`` server this test starts on
loopback, hosts files it writes, and the system resolver for ``localhost``
only. No query ever leaves the machine: every name that is not in a hosts file
is asked of the test's own server.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Any

from twisted.internet import address as taddress
from twisted.internet import defer, reactor
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from twisted.names import dns
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from netproto.lookup import (
    MAX_CNAME_HOPS,
    CNAMELoopError,
    HostsFile,
    InvalidLookupError,
    Lookup,
    LookupRefusedError,
    LookupTimeoutError,
    NameNotFoundError,
    ServerFailureError,
    lookup_addr,
    lookup_cname,
    lookup_host,
    lookup_port,
    resolve_ip,
)
from tests._dns_server import DNSServer, SilentServer, Zone, system_files_skip_reason

RECORDS: dict[str, list[tuple[str, str]]] = {
    "www.example.test": [("CNAME", "web.example.test")],
    "web.example.test": [
        ("A", "127.0.0.10"),
        ("AAAA", "fd00::10"),
        ("A", "127.0.0.11"),
        ("AAAA", "fd00::11"),
    ],
    "v4only.test": [("A", "127.0.0.20")],
    "v6only.test": [("AAAA", "fd00::20")],
    "dup.test": [("A", "127.0.0.30"), ("A", "127.0.0.30")],
    "loop1.test": [("CNAME", "loop2.test")],
    "loop2.test": [("CNAME", "loop1.test")],
    "self.test": [("CNAME", "self.test")],
    "hop.test": [("CNAME", "hop1.test")],
    "dangling.test": [("CNAME", "nowhere.test")],
    "mx.test": [("MX", "mail.test")],
    "big.test": [("AAAA", f"fd00::{i:x}") for i in range(1, 41)],
    "split.test": [("CNAME", "web.example.test")],
    "refused.test": [("A", "127.0.0.40")],
    "fail.test": [("A", "127.0.0.41")],
    "1.0.0.127.in-addr.arpa": [("PTR", "one.example.test"), ("PTR", "uno.example.test")],
    "2.0.0.127.in-addr.arpa": [("CNAME", "2.0-25.0.0.127.in-addr.arpa")],
    "2.0-25.0.0.127.in-addr.arpa": [("PTR", "two.example.test")],
    "3.0.0.127.in-addr.arpa": [("PTR", "bad name!"), ("PTR", "three.example.test")],
    "4.0.0.127.in-addr.arpa": [("PTR", "-bad-.test")],
    "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa": [
        ("PTR", "six.example.test")
    ],
}
# A chain of MAX_CNAME_HOPS records (allowed) and one of MAX_CNAME_HOPS + 1 (refused).
for _i in range(1, MAX_CNAME_HOPS + 2):
    RECORDS[f"hop{_i}.test"] = [("CNAME", f"hop{_i + 1}.test")]
RECORDS[f"hop{MAX_CNAME_HOPS + 2}.test"] = [("A", "127.0.0.50")]


GAI_ERRORS = [(socket.EAI_NONAME, NameNotFoundError), (socket.EAI_AGAIN, ServerFailureError)]
"""getaddrinfo and getnameinfo errors, and what a lookup makes of them."""


def gai_failing(code: int) -> Any:
    """A getaddrinfo or getnameinfo that fails with *code*."""

    def failing(*args: Any) -> Any:
        raise socket.gaierror(code, "test")

    return failing


class _Live(TestCase):
    """Starts the loopback DNS server; each test gets a :class:`Lookup` on it."""

    def setUp(self) -> None:
        self.zone = Zone(
            RECORDS,
            no_follow=["split.test", "dangling.test"],
            refused=["refused.test"],
            servfail=["fail.test"],
        )
        self.server = DNSServer(self.zone)
        self.address = self.server.start(reactor)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.server.stop()))

    def lookup(self, **kwargs: Any) -> Lookup:
        kwargs.setdefault("servers", [self.address])
        kwargs.setdefault("timeout", 2.0)
        return Lookup(reactor, **kwargs)

    def hosts_file(self, text: str) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path


class DNSTests(_Live):
    """Lookups through the DNS server."""

    async def test_addresses_and_order(self) -> None:
        """A CNAME is followed; IPv4 first then IPv6, each in answer order."""
        answer = await self.lookup().lookup("www.example.test")
        self.assertEqual(
            [str(a) for a in answer.addresses], ["127.0.0.10", "127.0.0.11", "fd00::10", "fd00::11"]
        )
        self.assertEqual((answer.canonical_name, answer.source), ("web.example.test.", "dns"))

    async def test_resolve_networks(self) -> None:
        """ip picks the first IPv4, ip4 asks only A, ip6 asks only AAAA."""
        lookup = self.lookup()
        self.assertEqual(str(await lookup.resolve_ip("www.example.test")), "127.0.0.10")
        del self.zone.queries[:]
        self.assertEqual(str(await lookup.resolve_ip("web.example.test", "ip4")), "127.0.0.10")
        self.assertEqual(self.zone.queries, [("web.example.test", dns.A)])
        del self.zone.queries[:]
        self.assertEqual(str(await lookup.resolve_ip("web.example.test", "ip6")), "fd00::10")
        self.assertEqual(self.zone.queries, [("web.example.test", dns.AAAA)])
        self.assertEqual(str(await lookup.resolve_ip("v6only.test")), "fd00::20")
        with self.assertRaises(NameNotFoundError):
            await lookup.resolve_ip("v4only.test", "ip6")
        with self.assertRaises(NameNotFoundError):
            await lookup.resolve_ip("v6only.test", "ip4")

    async def test_duplicates_dropped(self) -> None:
        """The same address twice in an answer is listed once."""
        self.assertEqual(
            [str(a) for a in await self.lookup().lookup_host("dup.test")], ["127.0.0.30"]
        )

    async def test_cname(self) -> None:
        """The canonical name is the chain's end, or the name itself, fully qualified."""
        lookup = self.lookup()
        self.assertEqual(await lookup.lookup_cname("www.example.test"), "web.example.test.")
        self.assertEqual(await lookup.lookup_cname("WWW.Example.TEST."), "web.example.test.")
        self.assertEqual(await lookup.lookup_cname("v4only.test"), "v4only.test.")

    async def test_chain_asked_again(self) -> None:
        """A server that answers with the CNAME alone is asked for its target."""
        answer = await self.lookup().lookup("split.test", "ip4")
        self.assertEqual([str(a) for a in answer.addresses], ["127.0.0.10", "127.0.0.11"])
        self.assertEqual(self.zone.queries, [("split.test", dns.A), ("web.example.test", dns.A)])

    async def test_long_chains(self) -> None:
        """MAX_CNAME_HOPS records are followed; one more is an error."""
        lookup = self.lookup()
        self.assertEqual(await lookup.lookup_cname("hop2.test"), f"hop{MAX_CNAME_HOPS + 2}.test.")
        with self.assertRaises(CNAMELoopError) as caught:
            await lookup.lookup_host("hop1.test")
        self.assertIn(f"more than {MAX_CNAME_HOPS} CNAME records", str(caught.exception))

    async def test_loops(self) -> None:
        """A two-name loop and a name aliased to itself are reported as loops."""
        for name in ("loop1.test", "self.test"):
            with self.assertRaises(CNAMELoopError) as caught:
                await self.lookup().lookup_cname(name)
            self.assertIn("CNAME loop", str(caught.exception))

    async def test_not_found(self) -> None:
        """NXDOMAIN, and a name with no address records: NameNotFoundError."""
        lookup = self.lookup()
        with self.assertRaises(NameNotFoundError) as caught:
            await lookup.lookup_host("nosuch.test")
        self.assertEqual(str(caught.exception), "nosuch.test: no such host")
        with self.assertRaises(NameNotFoundError) as caught:
            await lookup.resolve_ip("nosuch.test")
        with self.assertRaises(NameNotFoundError) as caught:
            await lookup.lookup_cname("mx.test")
        self.assertEqual(str(caught.exception), "mx.test: no address")

    async def test_dangling(self) -> None:
        """A CNAME to a name that does not exist: canonical name yes, addresses no."""
        lookup = self.lookup()
        self.assertEqual(await lookup.lookup_cname("dangling.test"), "nowhere.test.")
        with self.assertRaises(NameNotFoundError) as caught:
            await lookup.lookup_host("dangling.test")
        self.assertEqual(
            str(caught.exception),
            "dangling.test: no address (its CNAME chain ends at nowhere.test., which has none)",
        )

    async def test_refused_and_servfail(self) -> None:
        """REFUSED and SERVFAIL answers raise their own errors, naming the server."""
        with self.assertRaises(LookupRefusedError) as refused:
            await self.lookup().lookup_host("refused.test")
        self.assertIn(f"refused by 127.0.0.1:{self.address[1]}", str(refused.exception))
        with self.assertRaises(ServerFailureError) as failed:
            await self.lookup().lookup_host("fail.test")
        self.assertIn("SERVFAIL", str(failed.exception))

    async def test_truncated_answer_retried_over_tcp(self) -> None:
        """40 AAAA records do not fit 512 bytes: the TCP retry brings them all."""
        addresses = await self.lookup().lookup_host("big.test")
        self.assertEqual([str(a) for a in addresses], [f"fd00::{i:x}" for i in range(1, 41)])

    async def test_literals_and_bad_names_send_nothing(self) -> None:
        """Literals answer themselves (zones kept); bad names fail before any query."""
        lookup = self.lookup()
        self.assertEqual(str(await lookup.resolve_ip("fe80::1%lo", "ip6")), "fe80::1%lo")
        self.assertEqual(str(await lookup.resolve_ip("127.0.0.1")), "127.0.0.1")
        self.assertEqual(str(await lookup.resolve_ip("::ffff:127.0.0.1", "ip4")), "127.0.0.1")
        self.assertEqual([str(a) for a in await lookup.lookup_host("::1")], ["::1"])
        for name, network in [
            ("127.0.0.1", "ip6"),
            ("::1", "ip4"),
            ("127.0.0.1%lo", "ip"),
            ("127.001.0.1", "ip"),
            ("a..b", "ip"),
            ("x.test", "tcp"),
            ("::ffff:127.0.0.1", "ip6"),
        ]:
            with self.subTest(name=name):
                with self.assertRaises(InvalidLookupError):
                    await lookup.resolve_ip(name, network)
        with self.assertRaises(InvalidLookupError):
            await lookup.lookup_cname("127.0.0.1")
        with self.assertRaises(InvalidLookupError) as caught:
            await lookup.resolve_ip("::ffff:127.0.0.1", "ip6")
        self.assertEqual(
            str(caught.exception),
            "::ffff:127.0.0.1 is an IPv4-mapped address (IPv4, as in Go), not ip6",
        )
        self.assertEqual(self.zone.queries, [])

    async def test_ipv6_server(self) -> None:
        """The server may be an IPv6 address (here ::1)."""
        server = DNSServer(self.zone)
        try:
            address = server.start(reactor, "::1")
        except Exception as e:
            raise self.skipTest(f"no IPv6 loopback: {e}") from None
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(server.stop()))
        self.assertEqual(
            await Lookup(reactor, servers=[address], timeout=2).lookup_cname("www.example.test"),
            "web.example.test.",
        )

    async def test_module_functions(self) -> None:
        """resolve_ip, lookup_host and lookup_cname take the Lookup's options."""
        options: dict[str, Any] = {"reactor": reactor, "servers": [self.address], "timeout": 2}
        self.assertEqual(str(await resolve_ip("v4only.test", **options)), "127.0.0.20")
        self.assertEqual(
            [str(a) for a in await lookup_host("v6only.test", **options)], ["fd00::20"]
        )
        self.assertEqual(await lookup_cname("www.example.test", **options), "web.example.test.")


class ReverseTests(_Live):
    """The names of an address (Go's LookupAddr): hosts file, PTR records, the system."""

    async def test_ptr_records(self) -> None:
        """PTR answers for IPv4 and IPv6, every valid name, fully qualified, in answer order."""
        lookup = self.lookup()
        self.assertEqual(
            await lookup.lookup_addr("127.0.0.1"), ["one.example.test.", "uno.example.test."]
        )
        self.assertEqual(await lookup.lookup_addr("fd00::10"), ["six.example.test."])
        self.assertEqual(
            await lookup_addr("127.0.0.1", reactor=reactor, servers=[self.address]),
            ["one.example.test.", "uno.example.test."],
        )

    async def test_classless_delegation(self) -> None:
        """A CNAME in the reverse zone (RFC 2317) is followed inside the answer."""
        self.assertEqual(await self.lookup().lookup_addr("127.0.0.2"), ["two.example.test."])

    async def test_invalid_names_dropped(self) -> None:
        """A PTR that is not a host name is never returned; none valid is not found."""
        lookup = self.lookup()
        self.assertEqual(await lookup.lookup_addr("127.0.0.3"), ["three.example.test."])
        with self.assertRaises(NameNotFoundError):
            await lookup.lookup_addr("127.0.0.4")

    async def test_no_name(self) -> None:
        """An address without PTR records: NameNotFoundError naming it."""
        with self.assertRaises(NameNotFoundError) as caught:
            await self.lookup().lookup_addr("127.0.0.99")
        self.assertEqual(str(caught.exception), "127.0.0.99: no name")

    async def test_not_an_address(self) -> None:
        """Only address literals are looked up; nothing is sent for anything else."""
        for text in ("www.example.test", "", "300.1.1.1"):
            with self.assertRaises(InvalidLookupError):
                await self.lookup().lookup_addr(text)
        self.assertEqual(self.zone.queries, [])

    async def test_hosts_file_first(self) -> None:
        """An address the hosts file lists is answered from it alone, every name of its lines."""
        hosts = self.hosts_file("127.0.0.1 local.test alias.test\n127.0.0.1 again.test\n")
        lookup = self.lookup(hosts=hosts)
        self.assertEqual(
            await lookup.lookup_addr("127.0.0.1"), ["local.test.", "alias.test.", "again.test."]
        )
        self.assertEqual(self.zone.queries, [])
        self.assertEqual(await lookup.lookup_addr("127.0.0.2"), ["two.example.test."])

    async def test_system(self) -> None:
        """Without servers, getnameinfo answers (NI_NAMEREQD); its errors are the usual ones."""
        asked: list[Any] = []

        def answer(address: Any, flags: int) -> Any:
            asked.append((address, flags))
            return ("name.example.test", "0")

        lookup = Lookup(reactor, getnameinfo=answer)
        self.assertEqual(await lookup.lookup_addr("127.0.0.7"), ["name.example.test."])
        self.assertEqual(asked, [(("127.0.0.7", 0), socket.NI_NAMEREQD)])
        for code, error in GAI_ERRORS:
            with self.assertRaises(error):
                await Lookup(reactor, getnameinfo=gai_failing(code)).lookup_addr("127.0.0.7")

        def invalid(*args: Any) -> Any:
            return ("bad name!", "0")

        with self.assertRaises(NameNotFoundError):
            await Lookup(reactor, getnameinfo=invalid).lookup_addr("127.0.0.7")

    async def test_system_localhost(self) -> None:
        """127.0.0.1 is localhost to the system (from /etc/hosts: nothing leaves the machine)."""
        reason = system_files_skip_reason("localhost")
        if reason:
            raise self.skipTest(reason)
        listed = HostsFile.read("/etc/hosts").names(ipaddress.ip_address("127.0.0.1"))
        if not listed:
            raise self.skipTest("/etc/hosts does not list 127.0.0.1: the system would ask DNS")
        self.assertEqual(await Lookup(reactor).lookup_addr("127.0.0.1"), [listed[0]])


class TimeoutTests(TestCase):
    """Servers that never answer."""

    def silent(self) -> tuple[SilentServer, tuple[str, int]]:
        protocol = SilentServer()
        port = reactor.listenUDP(0, protocol, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return protocol, ("127.0.0.1", port.getHost().port)

    async def test_timeout(self) -> None:
        """No answer: LookupTimeoutError after the retries, which are bounded."""
        silent, address = self.silent()
        lookup = Lookup(reactor, servers=[address], timeout=0.3)
        started = reactor.seconds()
        with self.assertRaises(LookupTimeoutError) as caught:
            await lookup.lookup_host("www.example.test")
        self.assertIn(f"no answer from 127.0.0.1:{address[1]} within 0.3 s", str(caught.exception))
        self.assertEqual(silent.received, 6)  # 3 tries for A, 3 for AAAA
        self.assertGreaterEqual(reactor.seconds() - started, 0.29)

    async def test_next_server(self) -> None:
        """A silent first server is skipped for the next one, within the same lookup."""
        silent, address = self.silent()
        zone = Zone(RECORDS)
        server = DNSServer(zone)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(server.stop()))
        lookup = Lookup(reactor, servers=[address, server.start(reactor)], timeout=2)
        self.assertEqual(str(await lookup.resolve_ip("v4only.test", "ip4")), "127.0.0.20")
        self.assertEqual(silent.received, 1)


class HalfAnsweredTests(TestCase):
    """A server that answers A queries but drops AAAA ones."""

    def setUp(self) -> None:
        zone = Zone(
            {"half.test": [("A", "127.0.0.60")]},
            drop=[("half.test", dns.AAAA), ("gone.test", dns.AAAA)],
        )
        self.server = DNSServer(zone)
        self.lookup = Lookup(reactor, servers=[self.server.start(reactor)], timeout=0.3)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.server.stop()))

    async def test_partial_answer(self) -> None:
        """The addresses of the lane that answered are the answer."""
        self.assertEqual(
            [str(a) for a in await self.lookup.lookup_host("half.test")], ["127.0.0.60"]
        )

    async def test_nxdomain_wins(self) -> None:
        """NXDOMAIN on A is the answer even though the AAAA query timed out."""
        with self.assertRaises(NameNotFoundError) as caught:
            await self.lookup.lookup_host("gone.test")
        self.assertEqual(str(caught.exception), "gone.test: no such host")

    async def test_timeout_alone(self) -> None:
        """Asking only the dropped family times out."""
        with self.assertRaises(LookupTimeoutError):
            await self.lookup.resolve_ip("half.test", "ip6")


class HostsFileLookupTests(_Live):
    """A hosts file in front of the DNS server."""

    TEXT = (
        "127.0.0.5 box.example.test box\n::1 box\nfe80::5%lo linklocal\n"
        "127.0.0.6 www.example.test\n"
    )

    async def test_hosts_first(self) -> None:
        """A name in the file is answered from the file alone, never asked of DNS."""
        lookup = self.lookup(hosts=self.hosts_file(self.TEXT))
        answer = await lookup.lookup("box")
        self.assertEqual([str(a) for a in answer.addresses], ["127.0.0.5", "::1"])
        self.assertEqual((answer.canonical_name, answer.source), ("box.example.test.", "hosts"))
        self.assertEqual(await lookup.lookup_cname("BOX"), "box.example.test.")
        self.assertEqual(str(await lookup.resolve_ip("www.example.test")), "127.0.0.6")
        self.assertEqual(str(await lookup.resolve_ip("linklocal", "ip6")), "fe80::5%lo")
        with self.assertRaises(NameNotFoundError):
            await lookup.resolve_ip("linklocal", "ip4")
        self.assertEqual(self.zone.queries, [])
        self.assertEqual(str(await lookup.resolve_ip("v4only.test")), "127.0.0.20")
        self.assertEqual({q for q, _ in self.zone.queries}, {"v4only.test"})

    async def test_resolv_conf(self) -> None:
        """With a hosts file and no servers, the servers of resolv_conf are asked."""
        resolv = self.hosts_file(f"search example.test\nnameserver {self.address[0]}\n")
        lookup = Lookup(reactor, hosts=HostsFile.parse(self.TEXT), resolv_conf=resolv)
        self.assertEqual(lookup.servers, [("127.0.0.1", 53)])
        # Port 53 is not ours: point the parsed servers at the test server's port.
        lookup.servers = [self.address]
        self.assertEqual(str(await lookup.resolve_ip("v4only.test")), "127.0.0.20")

    def test_unreadable_hosts_file(self) -> None:
        """A hosts file that cannot be read fails when the Lookup is made."""
        with self.assertRaises(InvalidLookupError):
            Lookup(reactor, hosts="/nonexistent/hosts", servers=[("127.0.0.1", 9)])

    def test_bad_timeout(self) -> None:
        """A timeout that is not a positive number is refused."""
        for timeout in (0, -1, float("nan"), float("inf")):
            with self.assertRaises(InvalidLookupError):
                Lookup(reactor, timeout=timeout)


@implementer(IHostnameResolver)
class _FakeResolver:
    """Resolves every name to fixed addresses, and records what it was asked."""

    def __init__(self, addresses: list[taddress.IPv4Address | taddress.IPv6Address]) -> None:
        self.addresses = addresses
        self.asked: list[tuple[str, Any]] = []

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        self.asked.append((hostName, addressTypes))
        resolutionReceiver.resolutionBegan(None)  # type: ignore[arg-type]
        for a in self.addresses:
            resolutionReceiver.addressResolved(a)
        resolutionReceiver.resolutionComplete()
        return None


class SystemTests(TestCase):
    """Lookups through the system resolver (localhost only) or an injected one."""

    async def test_localhost(self) -> None:
        """localhost resolves through reactor.nameResolver to a loopback address."""
        reason = system_files_skip_reason("localhost")
        if reason:
            raise self.skipTest(reason)
        lookup = Lookup(reactor)
        self.assertFalse(lookup.uses_dns)
        answer = await lookup.lookup("localhost")
        self.assertEqual(answer.source, "system")
        self.assertTrue(answer.addresses)
        self.assertTrue(all(a.is_loopback for a in answer.addresses))
        canonical = await lookup.lookup_cname("localhost")
        self.assertIn(canonical, ("localhost.", "localhost.localdomain."))

    async def test_order_zone_and_families(self) -> None:
        """System answers: IPv4 first, duplicates dropped, zones kept, families asked."""
        lo = socket.if_nametoindex("lo")
        fake = _FakeResolver(
            [
                taddress.IPv6Address("TCP", "fe80::1", 0, 0, lo),
                taddress.IPv4Address("TCP", "127.0.0.2", 0),
                taddress.IPv6Address("TCP", "::1", 0),
                taddress.IPv4Address("TCP", "127.0.0.2", 0),
            ]
        )
        lookup = Lookup(reactor, name_resolver=fake)
        self.assertEqual(
            [str(a) for a in await lookup.lookup_host("some.name")],
            ["127.0.0.2", "fe80::1%lo", "::1"],
        )
        self.assertEqual(str(await lookup.resolve_ip("some.name", "ip6")), "fe80::1%lo")
        await lookup.lookup("some.name", "ip4")
        self.assertEqual(
            [t for _, t in fake.asked], [None, [taddress.IPv6Address], [taddress.IPv4Address]]
        )
        with self.assertRaises(NameNotFoundError) as caught:
            await Lookup(reactor, name_resolver=_FakeResolver([])).lookup_host("x.test")
        self.assertEqual(str(caught.exception), "x.test: no address (system resolver)")

    async def test_timeouts(self) -> None:
        """A system resolver that does not finish in time: LookupTimeoutError, both paths."""

        @implementer(IHostnameResolver)
        class Stuck:
            def resolveHostName(self, receiver: Any, name: str, *args: Any) -> Any:
                receiver.resolutionBegan(None)

        with self.assertRaises(LookupTimeoutError) as caught:
            await Lookup(reactor, name_resolver=Stuck(), timeout=0.1).lookup_host("x.test")
        self.assertEqual(
            str(caught.exception), "x.test: the system resolver did not answer within 0.1 s"
        )

        release = threading.Event()
        self.addCleanup(release.set)

        def slow(*args: Any) -> Any:
            release.wait(5)
            return []

        with self.assertRaises(LookupTimeoutError):
            await Lookup(reactor, getaddrinfo=slow, timeout=0.1).lookup_cname("x.test")

    async def test_cname_errors(self) -> None:
        """getaddrinfo's errors: EAI_NONAME is not found, EAI_AGAIN a failure."""
        for code, error in GAI_ERRORS:
            with self.assertRaises(error):
                await Lookup(reactor, getaddrinfo=gai_failing(code)).lookup_cname("x.test")

    async def test_address_errors_say_which(self) -> None:
        """
        Through getaddrinfo (the default), a name that does not exist is "no
        such host"; DNS servers that do not answer (EAI_AGAIN: unreachable, or
        failing) are a ServerFailureError saying so, not "no address" as well.
        """
        asked: list[tuple[Any, ...]] = []
        for code, error, text in [
            (socket.EAI_NONAME, NameNotFoundError, "x.test: no such host (system resolver)"),
            (
                socket.EAI_AGAIN,
                ServerFailureError,
                "x.test: the system's DNS servers did not answer (temporary failure)",
            ),
            (socket.EAI_FAIL, ServerFailureError, "x.test: system resolver: temporary failure"),
        ]:

            def failing(*args: Any, code: int = code) -> Any:
                asked.append(args)
                raise socket.gaierror(code, "Temporary failure")

            with self.subTest(code=code):
                with self.assertRaises(error) as caught:
                    await Lookup(reactor, getaddrinfo=failing).lookup_host("x.test")
                self.assertEqual(str(caught.exception), text)
        self.assertEqual(asked[0], ("x.test", None, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, 0))

    async def test_addresses_through_getaddrinfo(self) -> None:
        """getaddrinfo's answers: IPv4 first, duplicates dropped, zones kept, the family asked."""
        lo = socket.if_nametoindex("lo")
        families: list[int] = []

        def answer(host: str, port: Any, family: int, kind: int, proto: int, flags: int) -> Any:
            families.append(family)
            return [
                (socket.AF_INET6, kind, 6, "", ("fe80::1", 0, 0, lo)),
                (socket.AF_INET, kind, 6, "", ("127.0.0.2", 0)),
                (socket.AF_INET6, kind, 6, "", ("::1", 0, 0, 0)),
                (socket.AF_INET, kind, 6, "", ("127.0.0.2", 0)),
            ]

        lookup = Lookup(reactor, getaddrinfo=answer)
        self.assertEqual(
            [str(a) for a in await lookup.lookup_host("some.name")],
            ["127.0.0.2", "fe80::1%lo", "::1"],
        )
        await lookup.lookup("some.name", "ip6")
        self.assertEqual(families, [socket.AF_UNSPEC, socket.AF_INET6])

    async def test_cname_canonical(self) -> None:
        """The canonical name getaddrinfo reports comes back fully qualified."""

        def answer(*args: Any) -> Any:
            self.assertEqual(args[-1], socket.AI_CANONNAME)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "real.example.test", ("127.0.0.1", 0))]

        self.assertEqual(
            await Lookup(reactor, getaddrinfo=answer).lookup_cname("x.test"), "real.example.test."
        )


class PortTests(TestCase):
    """:func:`lookup_port`, the asynchronous service lookup."""

    async def test_lookup_port(self) -> None:
        """Names are looked up off the reactor thread; numbers answered directly."""
        self.assertEqual(await lookup_port("tcp", "telnet"), 23)
        self.assertEqual(await lookup_port("udp6", "domain"), 53)
        self.assertEqual(await lookup_port("tcp", "8080"), 8080)
        with self.assertRaises(InvalidLookupError):
            await lookup_port("tcp", "99999")
        with self.assertRaises(NameNotFoundError):
            await lookup_port("udp", "no-such-service")
