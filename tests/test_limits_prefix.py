"""
Peers counted by network, not by address: an IPv6 /64 (and, if asked, an IPv4
prefix shorter than /32) is one peer for the per-peer TCP cap and the UDP
source buckets, so one host's many addresses buy it nothing.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import Protocol
from twisted.trial.unittest import SynchronousTestCase

from netproto.echo import EchoFactory, EchoProtocol
from netproto.limits import Counters, Limits, SourcePolicy, peer_key
from netproto.util import peer_prefix


class PeerPrefixTests(SynchronousTestCase):
    """:func:`netproto.util.peer_prefix` against :mod:`ipaddress`."""

    @given(st.ip_addresses(v=6), st.integers(min_value=0, max_value=128))
    def test_v6_oracle(self, address: ipaddress.IPv6Address, prefix: int) -> None:
        """The network of *prefix* bits, as ip_network(strict=False) writes it."""
        if address.ipv4_mapped is not None:
            return
        expected = (
            str(address)
            if prefix == 128
            else str(ipaddress.ip_network((address, prefix), strict=False))
        )
        self.assertEqual(peer_prefix(address.exploded, 32, prefix), expected)

    @given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=32))
    def test_v4_oracle(self, address: ipaddress.IPv4Address, prefix: int) -> None:
        """IPv4, plain or IPv4-mapped, by the same rule."""
        expected = (
            str(address)
            if prefix == 32
            else str(ipaddress.ip_network((address, prefix), strict=False))
        )
        self.assertEqual(peer_prefix(str(address), prefix, 64), expected)
        self.assertEqual(peer_prefix(f"::ffff:{address}", prefix, 64), expected)

    def test_zone_and_garbage(self) -> None:
        """A zone is dropped; text that is no address is its own identity."""
        self.assertEqual(peer_prefix("fe80::1:2:3:4%eth0", 32, 64), "fe80::/64")
        self.assertEqual(peer_prefix("not-an-address", 32, 64), "not-an-address")

    def test_limits_checked(self) -> None:
        """Prefix lengths beyond the address width are refused."""
        self.assertRaises(ValueError, Limits, peer_prefix_v4=33)
        self.assertRaises(ValueError, Limits, peer_prefix_v6=129)
        self.assertEqual(Limits().peer_prefix_v6, 64)
        self.assertEqual(Limits().peer_prefix_v4, 32)


def _addresses_in_one_64(n: int) -> list[str]:
    return [f"2001:db8:0:7:{i:x}:{i * 7 % 65536:x}::{i:x}" for i in range(1, n + 1)]


class PerPeerCapTests(SynchronousTestCase):
    """``max_connections_per_peer`` holds over a whole /64."""

    def build(self, factory: EchoFactory, host: str) -> Protocol:
        return factory.buildProtocol(IPv6Address("TCP", host, 40000))

    def test_one_64_is_one_peer(self) -> None:
        """Ten addresses of one /64 get the cap of 4 together; another /64 gets its own."""
        factory = EchoFactory(None, Limits(max_connections_per_peer=4))
        built = [self.build(factory, host) for host in _addresses_in_one_64(10)]
        admitted = [p for p in built if isinstance(p, EchoProtocol)]
        self.assertEqual(len(admitted), 4)
        self.assertEqual(factory.counters.get("tcp_refused_peer"), 6)
        self.assertIsInstance(self.build(factory, "2001:db8:0:8::1"), EchoProtocol)

    def test_prefix_configurable(self) -> None:
        """--peer-prefix-v6=128 counts addresses; --peer-prefix-v4=24 counts IPv4 /24s."""
        by_address = EchoFactory(None, Limits(max_connections_per_peer=4, peer_prefix_v6=128))
        built = [self.build(by_address, host) for host in _addresses_in_one_64(10)]
        self.assertTrue(all(isinstance(p, EchoProtocol) for p in built))
        by_24 = EchoFactory(None, Limits(max_connections_per_peer=2, peer_prefix_v4=24))
        v4 = [by_24.buildProtocol(IPv4Address("TCP", f"10.1.2.{i}", 1)) for i in range(1, 6)]
        self.assertEqual(sum(isinstance(p, EchoProtocol) for p in v4), 2)
        self.assertEqual(peer_key(IPv4Address("TCP", "10.1.2.3", 1), 24), "10.1.2.0/24")


class SourceBucketTests(SynchronousTestCase):
    """The UDP source buckets hold over a whole /64."""

    def test_one_64_one_bucket(self) -> None:
        """100 addresses of one /64 share one bucket of 5; a new /64 gets its own."""
        policy = SourcePolicy(Limits(udp_rate=1, udp_burst=5), Counters())
        verdicts = [policy.check(host, 40000, 0.0) for host in _addresses_in_one_64(100)]
        self.assertEqual(verdicts.count(None), 5)
        self.assertEqual(verdicts.count("udp_rate_limited"), 95)
        self.assertEqual(len(policy), 1)
        self.assertIsNone(policy.check("2001:db8:0:8::1", 40000, 0.0))

    def test_bad_source_still_judged_by_address(self) -> None:
        """A multicast source is refused even though its /64 is a key like any other."""
        policy = SourcePolicy(Limits(), Counters())
        self.assertEqual(policy.check("ff02::1", 40000, 0.0), "udp_refused_source")

    def test_ipv4_by_prefix(self) -> None:
        """--peer-prefix-v4=24: a /24 shares a bucket; the default keeps one per address."""
        policy = SourcePolicy(Limits(udp_rate=1, udp_burst=2, peer_prefix_v4=24), Counters())
        verdicts = [policy.check(f"192.0.2.{i}", 40000, 0.0) for i in range(1, 6)]
        self.assertEqual(verdicts.count(None), 2)
        default = SourcePolicy(Limits(udp_rate=1, udp_burst=2), Counters())
        self.assertEqual(
            [default.check(f"192.0.2.{i}", 40000, 0.0) for i in range(1, 6)], [None] * 5
        )
