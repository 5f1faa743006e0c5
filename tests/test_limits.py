"""The protection layer: limits, counters, connection caps, deadlines, UDP source policy."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from netproto.limits import (
    COUNTERS,
    ConnectionLimiter,
    ConnectionWatch,
    Counters,
    Limits,
    RefusalSummary,
    SourcePolicy,
    bad_source,
    peer_key,
    periodic,
)


class LimitsTests(SynchronousTestCase):
    """:class:`Limits`."""

    def test_defaults(self) -> None:
        """The defaults are the documented ones: generous to clients, bounded for abusers."""
        limits = Limits()
        self.assertEqual(
            (
                limits.max_connections,
                limits.max_connections_per_peer,
                limits.idle_timeout,
                limits.write_stall_timeout,
                limits.udp_rate,
                limits.udp_burst,
                limits.udp_global_rate,
                limits.udp_global_burst,
                limits.udp_allowed_ports,
                limits.udp_max_sources,
                limits.summary_interval,
            ),
            (4096, 256, 300.0, 60.0, 20.0, 40, 5000.0, 10000, frozenset(), 16384, 60.0),
        )

    def test_negative_refused(self) -> None:
        """A negative or non-numeric knob is a ValueError naming it."""
        with self.assertRaisesRegex(ValueError, "udp_rate"):
            Limits(udp_rate=-1)
        with self.assertRaisesRegex(ValueError, "max_connections"):
            Limits(max_connections="10")  # type: ignore[arg-type]
        with self.assertRaisesRegex(ValueError, "udp_allowed_ports"):
            Limits(udp_allowed_ports=frozenset({70000}))

    def test_allowed_ports_frozen(self) -> None:
        """A plain set of allowed ports is stored as a frozenset (Limits stays hashable)."""
        limits = Limits(udp_allowed_ports={123})  # type: ignore[arg-type]
        self.assertEqual(limits.udp_allowed_ports, frozenset({123}))
        hash(limits)

    def test_sweep_period(self) -> None:
        """The sweep runs a tenth of the shortest timeout, within 1..30 s, or as configured."""
        self.assertEqual(Limits().sweep_period(), 6.0)
        self.assertEqual(Limits(idle_timeout=5, write_stall_timeout=0).sweep_period(), 1.0)
        self.assertEqual(Limits(idle_timeout=0, write_stall_timeout=0).sweep_period(), 30.0)
        self.assertEqual(Limits(idle_timeout=3600, write_stall_timeout=0).sweep_period(), 30.0)
        self.assertEqual(Limits(sweep_interval=0.25).sweep_period(), 0.25)


class CountersTests(SynchronousTestCase):
    """:class:`Counters`."""

    def test_add_and_snapshot(self) -> None:
        """add() accumulates; snapshot() has every documented name and is a copy."""
        counters = Counters()
        counters.add("udp_refused_port")
        counters.add("udp_refused_port", 4)
        counters.add("custom")
        snap = counters.snapshot()
        self.assertEqual(snap["udp_refused_port"], 5)
        self.assertEqual(snap["custom"], 1)
        self.assertTrue(set(COUNTERS) <= set(snap))
        self.assertEqual(snap["tcp_connections"], 0)
        snap["udp_refused_port"] = 0
        self.assertEqual(counters.get("udp_refused_port"), 5)
        self.assertIn("udp_refused_port=5", repr(counters))

    def test_names_documented(self) -> None:
        """Every counter name has a one-line description."""
        for name, text in COUNTERS.items():
            self.assertTrue(name.isidentifier() and text and "\n" not in text, name)


class PeerKeyTests(SynchronousTestCase):
    """:func:`peer_key`."""

    def test_normalised(self) -> None:
        """IPv4-mapped peers count as their IPv4 address; UNIX peers have no key."""
        self.assertEqual(peer_key(IPv4Address("TCP", "127.0.0.1", 1)), "127.0.0.1")
        self.assertEqual(peer_key(IPv6Address("TCP", "::ffff:127.0.0.1", 1)), "127.0.0.1")
        self.assertEqual(peer_key(IPv6Address("TCP", "0::1", 1)), "::1")
        # ::ffff:0:0/96 (IPv4-translated) is no IPv4-mapped address: not unwrapped.
        self.assertEqual(peer_key(IPv6Address("TCP", "::ffff:0:1.2.3.4", 1)), "::ffff:0:102:304")
        self.assertIsNone(peer_key(UNIXAddress(b"/tmp/x")))

    @given(st.ip_addresses())
    def test_matches_oracle(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        """The key is the stdlib's text of the address, IPv4-mapped ones unwrapped, whatever
        form (mapped, expanded) the address arrives in."""
        unwrapped = getattr(address, "ipv4_mapped", None) or address
        self.assertEqual(
            peer_key(IPv6Address("TCP", address.exploded, 1))
            if address.version == 6
            else peer_key(IPv4Address("TCP", str(address), 1)),
            str(unwrapped),
        )
        if address.version == 4:
            self.assertEqual(peer_key(IPv6Address("TCP", f"::ffff:{address}", 1)), str(address))


class ConnectionLimiterTests(SynchronousTestCase):
    """:class:`ConnectionLimiter`."""

    def test_per_peer(self) -> None:
        """A peer over its cap is refused while others are still admitted; release frees."""
        limiter = ConnectionLimiter(Limits(max_connections_per_peer=2, max_connections=10))
        self.assertIsNone(limiter.admit("a"))
        self.assertIsNone(limiter.admit("a"))
        self.assertEqual(limiter.admit("a"), "tcp_refused_peer")
        self.assertIsNone(limiter.admit("b"))
        limiter.release("a")
        self.assertIsNone(limiter.admit("a"))
        self.assertEqual(limiter.total, 3)

    def test_total(self) -> None:
        """The total cap applies to every peer, keyless (UNIX) ones included."""
        limiter = ConnectionLimiter(Limits(max_connections=2))
        self.assertIsNone(limiter.admit("a"))
        self.assertIsNone(limiter.admit(None))
        self.assertEqual(limiter.admit("b"), "tcp_refused_total")
        limiter.release(None)
        limiter.release("a")
        self.assertEqual((limiter.total, limiter.by_peer), (0, {}))

    def test_unlimited(self) -> None:
        """0 means unlimited."""
        limiter = ConnectionLimiter(Limits(max_connections=0, max_connections_per_peer=0))
        for _ in range(10000):
            self.assertIsNone(limiter.admit("a"))


class _Conn:
    """A connection as ConnectionWatch sees it."""

    def __init__(self) -> None:
        self.rx = 0
        self.queued: int | None = 0
        self.blocked = False
        self.aborted: str | None = None

    def activity(self) -> int:
        return self.rx

    def pending(self) -> int | None:
        return self.queued

    def write_blocked(self) -> bool:
        return self.blocked

    def abort(self, reason: str) -> None:
        self.aborted = reason


class ConnectionWatchTests(SynchronousTestCase):
    """:class:`ConnectionWatch`: deadlines by periodic sweep."""

    def watch(self, **kw: float) -> tuple[ConnectionWatch, Counters]:
        counters = Counters()
        return ConnectionWatch(Limits(**kw), counters), counters  # type: ignore[arg-type]

    def test_idle(self) -> None:
        """A silent connection is aborted after idle_timeout; traffic postpones it."""
        watch, counters = self.watch(idle_timeout=10, write_stall_timeout=0)
        quiet, busy = _Conn(), _Conn()
        watch.add(quiet, 0)
        watch.add(busy, 0)
        for now in range(1, 10):
            busy.rx += 1
            self.assertEqual(watch.sweep(now), [])
        busy.rx += 1
        self.assertEqual(watch.sweep(10), [(quiet, "tcp_idle_aborted")])
        self.assertEqual((quiet.aborted, busy.aborted), ("tcp_idle_aborted", None))
        self.assertEqual(counters.get("tcp_idle_aborted"), 1)
        self.assertEqual(len(watch), 1)
        self.assertEqual(watch.sweep(19), [])
        self.assertEqual(watch.sweep(20), [(busy, "tcp_idle_aborted")])

    def test_stall_despite_trickle(self) -> None:
        """Blocked output with no drain progress is aborted even if the peer keeps sending."""
        watch, counters = self.watch(idle_timeout=300, write_stall_timeout=5)
        conn = _Conn()
        watch.add(conn, 0)
        conn.blocked, conn.queued = True, 70000
        for now in range(1, 6):
            conn.rx += 1
            watch.sweep(now)
        self.assertIsNone(conn.aborted)
        conn.rx += 1
        watch.sweep(6)
        self.assertEqual(conn.aborted, "tcp_stall_aborted")
        self.assertEqual(counters.get("tcp_stall_aborted"), 1)

    def test_slow_reader_progress(self) -> None:
        """A slow reader whose queue keeps draining is not a stall."""
        watch, _ = self.watch(idle_timeout=300, write_stall_timeout=5)
        conn = _Conn()
        watch.add(conn, 0)
        conn.blocked = True
        for now in range(1, 100):
            conn.queued = 1_000_000 - now
            watch.sweep(now)
        self.assertIsNone(conn.aborted)

    def test_unknown_pending(self) -> None:
        """Without a pending count, a blocked connection is judged by how long it stayed blocked."""
        watch, _ = self.watch(idle_timeout=0, write_stall_timeout=5)
        conn = _Conn()
        conn.queued = None
        watch.add(conn, 0)
        conn.blocked = True
        watch.sweep(1)
        watch.sweep(5)
        self.assertIsNone(conn.aborted)
        watch.sweep(6)
        self.assertEqual(conn.aborted, "tcp_stall_aborted")

    def test_blocked_is_not_idle(self) -> None:
        """While output is blocked only the stall deadline applies; a drain counts as activity."""
        watch, _ = self.watch(idle_timeout=10, write_stall_timeout=0)
        conn = _Conn()
        watch.add(conn, 0)
        conn.blocked, conn.queued = True, 100
        watch.sweep(50)
        self.assertIsNone(conn.aborted)
        conn.blocked, conn.queued = False, 0
        watch.sweep(55)
        self.assertIsNone(conn.aborted)
        watch.sweep(65)
        self.assertEqual(conn.aborted, "tcp_idle_aborted")

    def test_disabled(self) -> None:
        """Both timeouts 0: nothing is ever aborted."""
        watch, _ = self.watch(idle_timeout=0, write_stall_timeout=0)
        conn = _Conn()
        watch.add(conn, 0)
        conn.blocked = True
        watch.sweep(1e9)
        self.assertIsNone(conn.aborted)
        watch.discard(conn)
        self.assertEqual(list(watch.connections()), [])


def _oracle_bad(text: str) -> bool:
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        first = int(address) >> 24
        return first in (0, 255) or address.is_multicast
    return address.is_multicast or address.is_unspecified


class BadSourceTests(SynchronousTestCase):
    """:func:`bad_source`."""

    def test_cases(self) -> None:
        """Multicast, broadcast, 0/8, 255/8 (also IPv4-mapped), :: and junk are bad."""
        for host in (
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.1.2.3",
            "::ffff:224.0.0.1",
            "::ffff:0.0.0.0",
            "ff02::1",
            "::",
            "not an address",
            "",
        ):
            self.assertTrue(bad_source(host), host)
        for host in (
            "127.0.0.1",
            "192.0.2.1",
            "::1",
            "::ffff:127.0.0.1",
            "fe80::1%lo",
            "223.255.255.255",
            "240.0.0.1",
        ):
            self.assertFalse(bad_source(host), host)

    @given(st.ip_addresses())
    def test_matches_oracle(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        """For every address, the verdict agrees with the stdlib ipaddress classification."""
        self.assertEqual(bad_source(str(address)), _oracle_bad(str(address)))

    @given(st.ip_addresses(v=4))
    def test_mapped_same_as_ipv4(self, address: ipaddress.IPv4Address) -> None:
        """An IPv4-mapped address gets the verdict of its IPv4 address."""
        self.assertEqual(bad_source(f"::ffff:{address}"), bad_source(str(address)))


class SourcePolicyTests(SynchronousTestCase):
    """:class:`SourcePolicy`."""

    def policy(self, served: set[int] | None = None, **kw: object) -> SourcePolicy:
        return SourcePolicy(Limits(**kw), Counters(), served)  # type: ignore[arg-type]

    def test_ports(self) -> None:
        """Source port 0, < 1024 and 2049 are refused unless allowed; 1024 and up pass."""
        policy = self.policy(udp_allowed_ports=frozenset({123}))
        for port in (0, 7, 13, 19, 53, 1023, 2049):
            self.assertEqual(policy.check("127.0.0.1", port, 0), "udp_refused_port", port)
        for port in (123, 1024, 2048, 2050, 65535):
            self.assertIsNone(policy.check("127.0.0.1", port, 0), port)

    def test_served_ports_live(self) -> None:
        """Ports added to the served set after construction are refused too."""
        served: set[int] = set()
        policy = self.policy(served)
        self.assertIsNone(policy.check("127.0.0.1", 5000, 0))
        served.add(5000)
        self.assertEqual(policy.check("127.0.0.1", 5000, 0), "udp_refused_served")
        self.assertIs(policy.served_ports, served)

    def test_bad_sources(self) -> None:
        """Bad source addresses are refused and never enter the bucket table."""
        policy = self.policy()
        for host in ("224.0.0.1", "255.255.255.255", "0.0.0.0", "::ffff:255.1.2.3", "ff02::1"):
            self.assertEqual(policy.check(host, 5000, 0), "udp_refused_source", host)
        self.assertEqual(len(policy), 0)

    def test_bucket(self) -> None:
        """A source gets its burst, then rate tokens per second; other sources are unaffected."""
        policy = self.policy(udp_rate=10, udp_burst=5)
        verdicts = [policy.check("127.0.0.1", 5000 + i, 0) for i in range(7)]
        self.assertEqual(verdicts, [None] * 5 + ["udp_rate_limited"] * 2)
        self.assertIsNone(policy.check("127.0.0.2", 5000, 0))
        self.assertEqual(policy.check("127.0.0.1", 5000, 0.05), "udp_rate_limited")
        self.assertIsNone(policy.check("127.0.0.1", 5000, 0.1))
        self.assertEqual(policy.check("127.0.0.1", 5000, 0.1), "udp_rate_limited")
        # After a long pause, the burst is back, but no more than the burst.
        verdicts = [policy.check("127.0.0.1", 5000, 100) for _ in range(6)]
        self.assertEqual(verdicts.count(None), 5)

    def test_mapped_shares_bucket(self) -> None:
        """An IPv4 source seen as IPv4-mapped by a dual-stack socket shares its IPv4 bucket."""
        policy = self.policy(udp_rate=1, udp_burst=2)
        self.assertIsNone(policy.check("127.0.0.1", 5000, 0))
        self.assertIsNone(policy.check("::ffff:127.0.0.1", 5000, 0))
        self.assertEqual(policy.check("::ffff:127.0.0.1", 5000, 0), "udp_rate_limited")
        self.assertEqual(len(policy), 1)

    def test_global(self) -> None:
        """The global budget caps replies over all sources, and refills."""
        policy = self.policy(udp_rate=0, udp_global_rate=100, udp_global_burst=3)
        verdicts = [policy.check(f"127.0.0.{i}", 5000, 0) for i in range(1, 6)]
        self.assertEqual(verdicts, [None] * 3 + ["udp_global_limited"] * 2)
        self.assertIsNone(policy.check("127.0.0.9", 5000, 0.01))

    def test_unlimited(self) -> None:
        """Rates of 0 never limit."""
        policy = self.policy(udp_rate=0, udp_global_rate=0)
        for _ in range(10000):
            self.assertIsNone(policy.check("127.0.0.1", 5000, 0))

    def test_table_bounded(self) -> None:
        """Spoofing many sources keeps the table at its bound and buys no extra replies."""
        policy = self.policy(udp_max_sources=100, udp_rate=1, udp_burst=2, udp_global_rate=0)
        answered = sum(
            policy.check(str(ipaddress.IPv4Address(0x0A000000 + i)), 5000, 0) is None
            for i in range(10000)
        )
        self.assertEqual(len(policy), 100)
        # One datagram from each of the 100 sources in the table, then the shared
        # overflow bucket's burst of 2 for the 9,900 others.
        self.assertEqual(answered, 102)
        self.assertEqual(policy.counters.get("udp_sources_overflow"), 9900)

    def test_prune(self) -> None:
        """Sources whose bucket refilled are forgotten, making room for new ones."""
        policy = self.policy(udp_max_sources=2, udp_rate=1, udp_burst=2)
        policy.check("127.0.0.1", 5000, 0)
        policy.check("127.0.0.2", 5000, 0)
        self.assertEqual(len(policy), 2)
        self.assertIsNone(policy.check("127.0.0.3", 5000, 10))
        self.assertEqual(len(policy), 1)
        self.assertEqual(policy.counters.get("udp_sources_overflow"), 0)
        self.assertEqual(policy.prune(100), 1)


class RefusalSummaryTests(SynchronousTestCase):
    """:class:`RefusalSummary` and the periodic timer."""

    def test_one_event_per_interval(self) -> None:
        """Thousands of refusals give one event per interval, none when nothing was refused."""
        events: list[dict[str, object]] = []
        counters = Counters()
        summary = RefusalSummary("echo/udp", counters)
        summary.log = Logger(observer=events.append)
        clock = Clock()
        loop = periodic(clock, 60, summary.tick)
        for _ in range(5000):
            counters.add("udp_refused_port")
        counters.add("udp_replies_sent", 7)
        clock.advance(60)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["refusals"], {"udp_refused_port": 5000})
        self.assertIn("udp_refused_port=5000", str(events[0]["summary"]))
        clock.advance(60)
        self.assertEqual(len(events), 1)
        counters.add("udp_rate_limited", 2)
        clock.advance(60)
        self.assertEqual(events[1]["refusals"], {"udp_rate_limited": 2})
        loop.stop()

    def test_periodic_disabled(self) -> None:
        """An interval of 0 starts no timer."""
        clock = Clock()
        self.assertIsNone(periodic(clock, 0, lambda: None))
        self.assertEqual(clock.getDelayedCalls(), [])
