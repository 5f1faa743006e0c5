"""--allow/--deny and the per-source connection-rate cap: the rules, and on real sockets."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv4Network, ip_network
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto.access import AccessControl, AccessRules, parse_network
from netproto.daytime import DaytimeDatagramProtocol, DaytimeFactory
from netproto.discard import DiscardDatagramProtocol
from netproto.limits import Limits
from tests._fakes import FakeUDPPort, assert_refused
from tests._servers import IPV6_SKIP, reactor, sleep, wait_until


class RuleTests(SynchronousTestCase):
    """Parsing and matching, as xinetd's only_from / no_access decide."""

    def test_parse(self) -> None:
        """Addresses, CIDR networks, host bits ignored, mapped networks unwrapped."""
        self.assertEqual(parse_network("192.0.2.7"), IPv4Network("192.0.2.7/32"))
        self.assertEqual(parse_network("10.1.2.3/8"), IPv4Network("10.0.0.0/8"))
        self.assertEqual(parse_network("::1"), ip_network("::1/128"))
        self.assertEqual(parse_network("::ffff:10.0.0.0/104"), IPv4Network("10.0.0.0/8"))
        for bad in ("", "10.0.0.0/33", "example.com", "1.2.3"):
            with self.assertRaises(ValueError):
                parse_network(bad)

    def test_no_rules_allow_all(self) -> None:
        """Without rules everyone is allowed, even text that is no address."""
        rules = AccessRules()
        self.assertFalse(rules.active)
        self.assertTrue(rules.allows("203.0.113.9"))

    def test_allow_only(self) -> None:
        """With allow rules only, a source must match one; mapped sources count as IPv4."""
        rules = AccessRules(allow=("127.0.0.0/8", "::1"))
        self.assertTrue(rules.allows("127.0.0.1"))
        self.assertTrue(rules.allows("::ffff:127.0.0.1"))
        self.assertTrue(rules.allows("::1"))
        self.assertFalse(rules.allows("10.0.0.1"))
        self.assertFalse(rules.allows("::2"))
        self.assertFalse(rules.allows("garbage"))

    def test_most_specific_wins(self) -> None:
        """Allow 10/8 but deny 10.1/16 but allow 10.1.2/24: the longest prefix decides."""
        rules = AccessRules(allow=("10.0.0.0/8", "10.1.2.0/24"), deny=("10.1.0.0/16",))
        self.assertTrue(rules.allows("10.9.9.9"))
        self.assertFalse(rules.allows("10.1.9.9"))
        self.assertTrue(rules.allows("10.1.2.9"))
        self.assertFalse(rules.allows("192.0.2.1"))  # allow rules exist: no match, no entry

    def test_deny_wins_tie_and_deny_only(self) -> None:
        """The same network allowed and denied is denied; deny alone lets the rest in."""
        self.assertFalse(AccessRules(allow=("::1",), deny=("::1",)).allows("::1"))
        deny = AccessRules(deny=("192.0.2.0/24",))
        self.assertFalse(deny.allows("::ffff:192.0.2.5"))
        self.assertTrue(deny.allows("198.51.100.1"))

    @given(
        st.lists(
            st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32), st.booleans()), max_size=6
        ),
        st.integers(0, 2**32 - 1),
    )
    def test_against_ipaddress(self, raw: list[tuple[int, int, bool]], source: int) -> None:
        """The verdict is the longest matching prefix's (deny on ties), computed the slow way."""
        allow = [ip_network((n, p), strict=False) for n, p, ok in raw if ok]
        deny = [ip_network((n, p), strict=False) for n, p, ok in raw if not ok]
        host = IPv4Address(source)
        matches = [
            (net.prefixlen, ok)
            for net, ok in [(a, True) for a in allow] + [(d, False) for d in deny]
            if host in net
        ]
        if matches:
            best = max(length for length, _ in matches)
            expected = all(ok for length, ok in matches if length == best)
        else:
            expected = not allow
        rules = AccessRules(allow=tuple(allow), deny=tuple(deny))
        self.assertEqual(rules.allows(str(host)), expected)
        self.assertEqual(rules.allows(f"::ffff:{host}"), expected)

    def test_connection_rate(self) -> None:
        """A burst, then the rate: refusals are per source and refill with time."""
        clock = Clock()
        control = AccessControl(AccessRules(connection_rate=2, connection_burst=3))
        verdicts = [control.admit_tcp("127.0.0.1", clock.seconds()) for _ in range(4)]
        self.assertEqual(verdicts, [None, None, None, "tcp_refused_rate"])
        self.assertIsNone(control.admit_tcp("127.0.0.2", clock.seconds()))
        self.assertEqual(control.admit_tcp("::ffff:127.0.0.1", clock.seconds()), "tcp_refused_rate")
        clock.advance(0.5)
        self.assertIsNone(control.admit_tcp("127.0.0.1", clock.seconds()))
        self.assertIsNone(control.admit_tcp(None, clock.seconds()))  # a UNIX socket

    def test_source_table_bounded(self) -> None:
        """Spoofed sources beyond max_sources share one bucket: memory stays bounded."""
        control = AccessControl(AccessRules(connection_rate=1, connection_burst=1, max_sources=10))
        for i in range(100):
            control.admit_tcp(f"10.0.0.{i}", 0.0)
        self.assertLessEqual(len(control), 10)

    def test_factory_and_protocol_hooks(self) -> None:
        """A denied TCP peer is aborted before a byte, a denied datagram gets nothing: counted."""
        rules = AccessRules(deny=("192.0.2.0/24",))
        factory = DaytimeFactory(Clock())
        factory.access = AccessControl(rules)
        assert_refused(self, factory, address.IPv4Address("TCP", "192.0.2.1", 5000))
        self.assertEqual(factory.counters.get("tcp_refused_access"), 1)
        self.assertEqual(factory.limiter.total, 0)
        protocol = DaytimeDatagramProtocol(Clock())
        protocol.access = AccessControl(rules)
        port = FakeUDPPort(protocol, 13)
        protocol.datagramReceived(b"", ("192.0.2.1", 5000))
        protocol.datagramReceived(b"", ("198.51.100.1", 5000))
        self.assertEqual(len(port.fake.sent), 1)
        self.assertEqual(protocol.counters.get("udp_refused_access"), 1)
        discard = DiscardDatagramProtocol(Clock())
        discard.access = AccessControl(rules)
        FakeUDPPort(discard, 9)
        discard.datagramReceived(b"x", ("::ffff:192.0.2.1", 5000))
        self.assertEqual(discard.counters.get("udp_refused_access"), 1)


class AccessLoopbackTests(TestCase):
    """The rules on real sockets: IPv4, IPv6 and a dual-stack listener."""

    timeout = 30

    def tcp(self, rules: AccessRules, interface: str) -> tuple[Any, int]:
        factory = DaytimeFactory(reactor, Limits())
        factory.access = AccessControl(rules)
        port = reactor.listenTCP(0, factory, interface=interface)
        self.addCleanup(port.stopListening)
        return factory, port.getHost().port

    def udp(self, rules: AccessRules, interface: str) -> tuple[Any, int]:
        protocol = DaytimeDatagramProtocol(reactor, Limits())
        protocol.access = AccessControl(rules)
        port = reactor.listenUDP(0, protocol, interface=interface)
        self.addCleanup(port.stopListening)
        return protocol, port.getHost().port

    async def answered_tcp(self, host: str, port: int) -> bool:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        client = socket.socket(family, socket.SOCK_STREAM)
        self.addCleanup(client.close)
        client.setblocking(False)
        client.connect_ex((host, port))
        got = b""
        for _ in range(500):
            await sleep(0.01)
            try:
                chunk = client.recv(100)
            except BlockingIOError:
                continue
            except OSError:
                return False
            if not chunk:
                break
            got += chunk
        client.close()
        return bool(got)

    async def answered_udp(self, host: str, port: int, counter: Any) -> bool:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        client = socket.socket(family, socket.SOCK_DGRAM)
        self.addCleanup(client.close)
        client.setblocking(False)
        before = counter()
        client.sendto(b"", (host, port))
        await wait_until(lambda: counter() > before)
        for _ in range(20):
            await sleep(0.01)
            try:
                return bool(client.recv(100))
            except BlockingIOError:
                continue
        return False

    async def check(self, interface: str, allowed: str, denied_rule: str, host: str) -> None:
        rules = AccessRules(deny=(denied_rule,))
        factory, tport = self.tcp(rules, interface)
        protocol, uport = self.udp(rules, interface)
        self.assertFalse(await self.answered_tcp(host, tport))
        self.assertEqual(factory.counters.get("tcp_refused_access"), 1)
        self.assertFalse(
            await self.answered_udp(
                host, uport, lambda: protocol.counters.get("udp_datagrams_received")
            )
        )
        self.assertEqual(protocol.counters.get("udp_refused_access"), 1)
        open_rules = AccessRules(allow=(allowed,))
        _, tport2 = self.tcp(open_rules, interface)
        protocol2, uport2 = self.udp(open_rules, interface)
        self.assertTrue(await self.answered_tcp(host, tport2))
        self.assertTrue(
            await self.answered_udp(
                host, uport2, lambda: protocol2.counters.get("udp_datagrams_received")
            )
        )

    async def test_ipv4(self) -> None:
        """IPv4: 127.0.0.1 denied by 127.0.0.0/8, allowed by 127.0.0.1."""
        await self.check("127.0.0.1", "127.0.0.1", "127.0.0.0/8", "127.0.0.1")

    async def test_ipv6(self) -> None:
        """IPv6: ::1 denied by ::1/128, allowed by ::/0."""
        await self.check("::1", "::/0", "::1", "::1")

    test_ipv6.skip = IPV6_SKIP  # type: ignore[attr-defined]

    async def test_dual_stack(self) -> None:
        """A dual-stack listener sees ::ffff:127.0.0.1: IPv4 rules still apply to it."""
        await self.check("::", "127.0.0.0/8", "127.0.0.1", "127.0.0.1")

    test_dual_stack.skip = IPV6_SKIP  # type: ignore[attr-defined]

    async def test_connection_rate_dual_stack(self) -> None:
        """Over the rate cap a connection is closed without a byte, per source, counted."""
        factory, port = self.tcp(AccessRules(connection_rate=0.01, connection_burst=2), "::")
        results = [await self.answered_tcp("127.0.0.1", port) for _ in range(3)]
        self.assertEqual(results, [True, True, False])
        self.assertEqual(factory.counters.get("tcp_refused_rate"), 1)
        self.assertTrue(await self.answered_tcp("::1", port))  # another source
        await wait_until(lambda: factory.limiter.total == 0)

    test_connection_rate_dual_stack.skip = IPV6_SKIP  # type: ignore[attr-defined]

    async def rate_capped(self, interface: str, host: str) -> None:
        factory, port = self.tcp(AccessRules(connection_rate=0.01, connection_burst=1), interface)
        results = [await self.answered_tcp(host, port) for _ in range(2)]
        self.assertEqual(results, [True, False])
        self.assertEqual(factory.counters.get("tcp_refused_rate"), 1)
        await wait_until(lambda: factory.limiter.total == 0)

    async def test_connection_rate_ipv4(self) -> None:
        """The cap on an IPv4 listener."""
        await self.rate_capped("127.0.0.1", "127.0.0.1")

    async def test_connection_rate_ipv6(self) -> None:
        """The cap on an IPv6 listener."""
        await self.rate_capped("::1", "::1")

    test_connection_rate_ipv6.skip = IPV6_SKIP  # type: ignore[attr-defined]
