"""The UDP source policy on batches: the same verdicts as the rules one by one."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from netproto.limits import Counters, Limits, SourcePolicy, bad_source
from netproto.util import peer_prefix

HOSTS = (
    "127.0.0.1",
    "::ffff:127.0.0.1",
    "127.0.0.2",
    "10.0.0.1",
    "::ffff:10.0.0.1",
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:1::1",
    "::1",
    "::",  # unspecified, in the /64 of ::1
    "224.0.0.1",
    "::ffff:0.0.0.1",
    "ff02::1",
)
PORTS = (0, 53, 1023, 1024, 2049, 5000, 5001)
SERVED = frozenset({5001})


class _Rules:
    """The rules of :class:`SourcePolicy`, written out plainly, one datagram at a time."""

    def __init__(self, limits: Limits, counters: Counters) -> None:
        self.limits = limits
        self.counters = counters
        self.buckets: dict[str, list[float]] = {}
        self.glob = [float(limits.udp_global_burst), 0.0]
        self.started = False
        self.overflow = [float(limits.udp_burst), 0.0]
        self.next_prune = 0.0

    def check(self, host: str, port: int, now: float) -> str | None:
        limits = self.limits
        if (port < 1024 or port == 2049) and port not in limits.udp_allowed_ports:
            return "udp_refused_port"
        if port in SERVED:
            return "udp_refused_served"
        if bad_source(host):
            return "udp_refused_source"
        if host.startswith("::ffff:"):
            host = host[7:]
        key = peer_prefix(host, limits.peer_prefix_v4, limits.peer_prefix_v6)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.new_bucket(key, now)
        if limits.udp_rate:
            tokens = min(limits.udp_burst, bucket[0] + (now - bucket[1]) * limits.udp_rate)
            bucket[1] = now
            bucket[0] = tokens - 1 if tokens >= 1 else tokens
            if tokens < 1:
                return "udp_rate_limited"
        if limits.udp_global_rate:
            if not self.started:
                self.glob[1], self.started = now, True
            glob = self.glob
            rate, burst = limits.udp_global_rate, limits.udp_global_burst
            tokens = min(burst, glob[0] + (now - glob[1]) * rate)
            glob[1] = now
            glob[0] = tokens - 1 if tokens >= 1 else tokens
            if tokens < 1:
                return "udp_global_limited"
        return None

    def new_bucket(self, key: str, now: float) -> list[float]:
        maximum = self.limits.udp_max_sources
        if len(self.buckets) >= maximum:
            if now >= self.next_prune:
                rate, burst = self.limits.udp_rate, self.limits.udp_burst
                refill = burst / rate
                self.next_prune = now + max(refill, 1.0)
                for stale in [k for k, b in self.buckets.items() if now - b[1] >= refill]:
                    del self.buckets[stale]
            if len(self.buckets) >= maximum:
                self.counters.add("udp_sources_overflow")
                return self.overflow
        bucket = self.buckets[key] = [float(self.limits.udp_burst), now]
        return bucket


batches = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3),  # seconds since the batch before
        st.lists(st.tuples(st.sampled_from(HOSTS), st.sampled_from(PORTS)), max_size=12),
    ),
    max_size=12,
)


class AdmitTests(SynchronousTestCase):
    """:meth:`SourcePolicy.admit`: a batch at one clock reading."""

    @settings(max_examples=300, deadline=None)
    @given(batches, st.integers(1, 4), st.sampled_from([32, 24]), st.sampled_from([64, 128]))
    def test_same_verdicts_as_the_rules(
        self, run: list[tuple[float, list[tuple[str, int]]]], table: int, v4: int, v6: int
    ) -> None:
        """
        Batch after batch, admit() answers exactly the datagrams the rules
        one by one answer, counts the same refusals and overflows, and keeps
        the same number of sources; a bad source is refused whatever shares
        its network (``::`` beside ``::1``).
        """
        limits = Limits(
            udp_rate=2,
            udp_burst=3,
            udp_global_rate=5,
            udp_global_burst=8,
            udp_max_sources=table,
            peer_prefix_v4=v4,
            peer_prefix_v6=v6,
            udp_allowed_ports=frozenset({53}),
        )
        policy = SourcePolicy(limits, Counters(), SERVED)
        rules = _Rules(limits, Counters())
        expected_tally: defaultdict[str, int] = defaultdict(int)
        tally: defaultdict[str, int] = defaultdict(int)
        now = 0.0
        for pause, sources in run:
            now += pause
            datagrams = [(b"%d" % i, source, i) for i, source in enumerate(sources)]
            expected = []
            for datagram in datagrams:
                refusal = rules.check(*datagram[1], now)
                if refusal is None:
                    expected.append(datagram)
                else:
                    expected_tally[refusal] += 1
            self.assertEqual(policy.admit(datagrams, now, tally), expected)
            self.assertEqual(tally, expected_tally)
            self.assertEqual(len(policy), len(rules.buckets))
        self.assertEqual(
            policy.counters.get("udp_sources_overflow"),
            rules.counters.get("udp_sources_overflow"),
        )

    def test_counts_into_the_counters(self) -> None:
        """Without a tally, refusals are added to the policy's counters."""
        policy = SourcePolicy(Limits(udp_rate=1, udp_burst=1), Counters(), SERVED)
        datagrams = [(b"", ("127.0.0.1", 5000), None)] * 3 + [(b"", ("127.0.0.1", 5001), None)]
        self.assertEqual(policy.admit(datagrams, 0.0), datagrams[:1])
        self.assertEqual(policy.counters.get("udp_rate_limited"), 2)
        self.assertEqual(policy.counters.get("udp_refused_served"), 1)

    def test_pruned_source_judged_again(self) -> None:
        """A source whose bucket a prune forgot starts from a full burst, not a stale bucket."""
        policy = SourcePolicy(Limits(udp_rate=1, udp_burst=2), Counters())
        one = [(b"", ("::ffff:127.0.0.1", 5000), None)]
        self.assertEqual(len(policy.admit(one * 3, 0.0)), 2)
        self.assertEqual(policy.prune(10.0), 1)
        self.assertEqual(len(policy), 0)
        self.assertEqual(len(policy.admit(one * 3, 10.0)), 2)
        self.assertEqual(len(policy), 1)
