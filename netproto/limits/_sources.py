"""
Whether a UDP datagram gets an answer (see :mod:`netproto.limits`): source
rules against reflection and loops, a per-source token bucket and a global
budget, with a bounded source table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Set
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address
from typing import Any

from netproto.limits._knobs import Counters, Limits
from netproto.util import peer_prefix, unmap

__all__ = ["SourcePolicy", "bad_source"]

_Datagram = tuple[Any, ...]
"""A datagram as :meth:`SourcePolicy.admit` takes it: ``(host, port)`` second."""


_BAD_V4 = (
    IPv4Network("0.0.0.0/8"),
    IPv4Network("255.0.0.0/8"),  # includes 255.255.255.255
    IPv4Network("224.0.0.0/4"),
)


def bad_source(host: str) -> bool:
    """
    Whether a datagram from *host* must never be answered: a multicast,
    broadcast (255.255.255.255), ``0.0.0.0/8`` or ``255.0.0.0/8`` source,
    an IPv6 multicast or unspecified source, or text that is no address at
    all. IPv4-mapped IPv6 addresses are judged as their IPv4 address.
    """
    try:
        address = unmap(ip_address(host.partition("%")[0]))
    except ValueError:
        return True
    if isinstance(address, IPv4Address):
        return any(address in net for net in _BAD_V4)
    assert isinstance(address, IPv6Address)
    return address.is_multicast or address.is_unspecified


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class SourcePolicy:
    """
    Whether a UDP datagram from a given source gets a reply.

    :meth:`check` returns ``None`` (answer it) or the name of the counter to
    add (drop it silently). The rules, in order:

    1. source port 0, below 1024, or 2049 (NFS), unless in
       ``limits.udp_allowed_ports`` -> ``udp_refused_port``;
    2. a source port in *served_ports* (a live set of every UDP port this
       process serves, filled by the caller) -> ``udp_refused_served``;
    3. a bad source address (see :func:`bad_source`) -> ``udp_refused_source``;
    4. the source address's token bucket (``udp_rate`` per second, at most
       ``udp_burst``) is empty -> ``udp_rate_limited``;
    5. the global bucket (``udp_global_rate``, ``udp_global_burst``) is empty
       -> ``udp_global_limited``.

    Buckets are per source *network* (``peer_prefix_v4`` / ``peer_prefix_v6``
    bits: an IPv4 address, an IPv6 /64 by default; IPv4-mapped unwrapped),
    whatever the source port, so changing ports or addresses inside one's
    own /64 buys nothing. The table of buckets holds at
    most ``udp_max_sources`` addresses: entries that have refilled carry no
    information and are pruned; if the table is still full, new sources share
    one overflow bucket (counted as ``udp_sources_overflow``), so spoofing
    many sources costs memory nowhere and buys no extra replies.
    """

    def __init__(
        self,
        limits: Limits,
        counters: Counters,
        served_ports: Set[int] | None = None,
    ) -> None:
        self.limits = limits
        self.counters = counters
        self.served_ports: Set[int] = served_ports if served_ports is not None else frozenset()
        self._buckets: dict[str, _Bucket] = {}
        self._global = _Bucket(float(limits.udp_global_burst), 0.0)
        self._global_started = False
        self._overflow = _Bucket(float(limits.udp_burst), 0.0)
        self._next_prune = 0.0
        # Each source address as it came (``::ffff:`` and all), judged good
        # once, to its bucket: no address work per datagram. Cleared whenever
        # a prune forgets buckets, and when it holds udp_max_sources hosts.
        self._known: dict[str, _Bucket] = {}
        self._known_max = limits.udp_max_sources or 16384
        self._rate = float(limits.udp_rate)
        self._burst = float(limits.udp_burst)
        self._grate = float(limits.udp_global_rate)
        self._gburst = float(limits.udp_global_burst)
        self._v4, self._v6 = limits.peer_prefix_v4, limits.peer_prefix_v6
        self._prefixed = self._v4 < 32 or self._v6 < 128

    def __len__(self) -> int:
        """How many source addresses the table holds."""
        return len(self._buckets)

    def check(self, host: str, port: int, now: float) -> str | None:
        """The refusal counter for a datagram from (*host*, *port*), or ``None``."""
        tally: defaultdict[str, int] = defaultdict(int)
        self.admit(((b"", (host, port)),), now, tally)
        return next(iter(tally), None)

    def admit(
        self, datagrams: Iterable[_Datagram], now: float, tally: dict[str, int] | None = None
    ) -> list[_Datagram]:
        """
        The datagrams of *datagrams* (tuples holding ``(host, port)`` second)
        that get a reply, in order: the rules of :meth:`check` applied to each
        in turn, all at time *now*. Each refused one adds 1 to its refusal
        counter in *tally* (by default the counters' values).
        """
        if tally is None:
            tally = self.counters.values
        allowed = self.limits.udp_allowed_ports
        served = self.served_ports
        known = self._known
        rate, burst = self._rate, self._burst
        grate = self._grate
        glob = self._global
        gtokens = 0.0
        if grate:
            if not self._global_started:
                glob.stamp = now
                self._global_started = True
            gtokens = glob.tokens + (now - glob.stamp) * grate
            if gtokens > self._gburst:
                gtokens = self._gburst
            glob.stamp = now
        out: list[_Datagram] = []
        append = out.append
        for datagram in datagrams:
            host, port = datagram[1]
            if (port < 1024 or port == 2049) and port not in allowed:
                tally["udp_refused_port"] += 1
                continue
            if port in served:
                tally["udp_refused_served"] += 1
                continue
            bucket = known.get(host)
            if bucket is None:
                bucket = self._bucket(host, now)
                if bucket is None:
                    tally["udp_refused_source"] += 1
                    continue
            if rate:
                tokens = bucket.tokens
                if bucket.stamp != now:  # one clock reading per batch: refill once
                    tokens += (now - bucket.stamp) * rate
                    if tokens > burst:
                        tokens = burst
                    bucket.stamp = now
                if tokens < 1.0:
                    bucket.tokens = tokens
                    tally["udp_rate_limited"] += 1
                    continue
                bucket.tokens = tokens - 1.0
            if grate:
                if gtokens < 1.0:
                    tally["udp_global_limited"] += 1
                    continue
                gtokens -= 1.0
            append(datagram)
        if grate:
            glob.tokens = gtokens
        return out

    def _bucket(self, host: str, now: float) -> _Bucket | None:
        """
        The bucket of *host*, met for the first time since the last prune
        (``None``: a bad source), remembered in the table of judged sources
        unless it is the shared overflow bucket (each of its datagrams is
        counted).
        """
        if bad_source(host):
            return None
        key = host
        if key.startswith("::ffff:") and "." in key and ":" not in key[7:]:
            key = key[7:]  # a dual-stack socket's IPv4 peer: one bucket per address
        if self._prefixed and (":" in key or self._v4 < 32):
            key = peer_prefix(key, self._v4, self._v6)  # cached
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._new_bucket(key, now)
            if bucket is self._overflow:
                return bucket
        known = self._known
        if len(known) >= self._known_max:
            known.clear()
        known[host] = bucket
        return bucket

    def _new_bucket(self, host: str, now: float) -> _Bucket:
        maximum = self.limits.udp_max_sources
        if maximum and len(self._buckets) >= maximum:
            if now >= self._next_prune:
                self.prune(now)
            if len(self._buckets) >= maximum:
                self.counters.add("udp_sources_overflow")
                return self._overflow
        bucket = _Bucket(self._burst, now)
        self._buckets[host] = bucket
        return bucket

    def prune(self, now: float) -> int:
        """
        Forget every source whose bucket has refilled (it holds no state a
        fresh bucket would not); return how many were forgotten. Called when
        the table is full, at most once per refill time, and by the owner's
        periodic tick.
        """
        rate, burst = self._rate, self._burst
        refill = burst / rate if rate else 0.0
        self._next_prune = now + max(refill, 1.0)
        stale = [h for h, b in self._buckets.items() if not rate or now - b.stamp >= refill]
        for host in stale:
            del self._buckets[host]
        if stale:
            self._known.clear()
        return len(stale)
