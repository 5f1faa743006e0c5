"""
Access control for every service: which source addresses may use it
(``--allow`` / ``--deny``, like xinetd's ``only_from`` / ``no_access``), and a
per-source cap on the rate of new TCP connections (like xinetd's ``cps``,
but per source: one abusive address never switches the service off for
everyone).

Nothing here owns a socket or reads a clock: the services pass the source
address (and, for TCP, the current time) and count the verdict.

- :func:`parse_network` reads one ``ADDR[/PREFIX]`` rule.
- :class:`AccessRules` is the configuration: the allow and deny networks and
  the connection rate; it is immutable and may be shared by every service.
- :class:`AccessControl` applies the rules for one service: :meth:`~AccessControl.admit_tcp`
  on each accepted connection, :meth:`~AccessControl.admit_udp` on each datagram.

The rules, as xinetd applies ``only_from`` and ``no_access``: with no rule
every source is allowed; with allow rules only, a source must match one;
with deny rules only, a source must match none; with both, the most specific
(longest prefix) rule matching the source decides, and a deny rule wins a tie.
IPv4-mapped sources (``::ffff:a.b.c.d``, a dual-stack socket's IPv4 peers) are
judged as their IPv4 address, and a mapped rule as the IPv4 network it maps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from netproto.util import unmap

__all__ = [
    "ACCESS_COUNTERS",
    "AccessControl",
    "AccessRules",
    "Network",
    "parse_network",
]

Network = IPv4Network | IPv6Network
"""An IPv4 or IPv6 network, as the standard library represents it."""

ACCESS_COUNTERS: dict[str, str] = {
    "tcp_refused_access": "TCP connections closed at once: source not allowed (--allow/--deny)",
    "tcp_refused_rate": "TCP connections closed at once: the source's connection rate cap",
    "udp_refused_access": "datagrams refused: source not allowed (--allow/--deny)",
}
"""The counters the services add for the verdicts of :class:`AccessControl`."""

_MAPPED = IPv6Network("::ffff:0:0/96")
_CACHE_SIZE = 4096


def parse_network(text: str) -> Network:
    """
    One rule: an address (``192.0.2.7``, ``::1``: that address alone) or a
    network in CIDR notation (``10.0.0.0/8``, ``2001:db8::/32``). Host bits
    below the prefix are ignored, as xinetd ignores them (``10.1.2.3/8`` is
    ``10.0.0.0/8``). An IPv4-mapped network (``::ffff:10.0.0.0/104``) is the
    IPv4 network it maps. Raises :class:`ValueError` with a one-line reason.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty address or network")
    cleaned = text.strip()
    try:
        network: Network = ip_network(cleaned, strict=False)
    except ValueError:
        raise ValueError(
            f"{cleaned!r} is not an address or a network (ADDR or ADDR/PREFIX)"
        ) from None
    if isinstance(network, IPv6Network) and network.prefixlen >= 96 and network.subnet_of(_MAPPED):
        base = network.network_address.ipv4_mapped
        assert base is not None
        return IPv4Network(f"{base}/{network.prefixlen - 96}", strict=False)
    return network


def _networks(values: Iterable[Network | str]) -> tuple[Network, ...]:
    return tuple(
        v if isinstance(v, (IPv4Network, IPv6Network)) else parse_network(v) for v in values
    )


@dataclass(frozen=True)
class AccessRules:
    """
    Who may use a service. *allow* and *deny* are networks (or their text,
    parsed with :func:`parse_network`); *connection_rate* is the new TCP
    connections per second one source address may open, with bursts of
    *connection_burst* (``0``: no cap, the default; a burst of 0 means twice
    the rate, at least 1).
    """

    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()
    connection_rate: float = 0.0
    connection_burst: int = 0
    #: Source addresses the rate cap remembers at most; beyond it, new
    #: sources share one bucket (an attacker spoofing sources gains nothing).
    max_sources: int = 16384
    _rules: tuple[tuple[int, bool, Network], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        allow = _networks(self.allow)
        deny = _networks(self.deny)
        object.__setattr__(self, "allow", allow)
        object.__setattr__(self, "deny", deny)
        for name in ("connection_rate", "connection_burst", "max_sources"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, not {value!r}")
            if value != value or value == float("inf"):
                raise ValueError(f"{name} must be a finite number, not {value!r}")
        # Longest prefix first; at one length, deny before allow.
        rules = [(n.prefixlen, False, n) for n in deny] + [(n.prefixlen, True, n) for n in allow]
        rules.sort(key=lambda r: (-r[0], r[1]))
        object.__setattr__(self, "_rules", tuple(rules))

    @property
    def active(self) -> bool:
        """Whether any rule or the connection rate cap is set."""
        return bool(self._rules) or bool(self.connection_rate)

    @property
    def filters(self) -> bool:
        """Whether any allow or deny rule is set."""
        return bool(self._rules)

    def allows(self, host: str) -> bool:
        """
        Whether the source address *host* (text, as a transport reports it;
        IPv4-mapped unwrapped, an IPv6 zone ignored) may use the service.
        Text that is no address is refused when any rule is set.
        """
        if not self._rules:
            return True
        try:
            address = unmap(ip_address(host.partition("%")[0]))
        except ValueError:
            return False
        for _length, allowed, network in self._rules:
            if address.version == network.version and address in network:
                return allowed
        # No rule matched: allowed unless only allow rules say who may.
        return not self.allow


DEFAULT_ACCESS = AccessRules()


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class AccessControl:
    """
    The :class:`AccessRules` applied for one service. The verdict of each
    source address is cached (a bounded table, cleared when full), so a
    datagram from a known source costs one dictionary look-up.
    """

    def __init__(self, rules: AccessRules = DEFAULT_ACCESS) -> None:
        self.rules = rules
        self._verdicts: dict[str, bool] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._rate = float(rules.connection_rate)
        burst = rules.connection_burst or max(1, int(2 * self._rate))
        self._burst = float(burst)
        self._overflow = _Bucket(self._burst, 0.0)
        self._next_prune = 0.0
        self._filters = rules.filters

    def __len__(self) -> int:
        """How many source addresses the connection rate cap remembers."""
        return len(self._buckets)

    def allowed(self, host: str) -> bool:
        """Whether *host* passes the allow and deny rules (cached)."""
        verdict = self._verdicts.get(host)
        if verdict is None:
            if len(self._verdicts) >= _CACHE_SIZE:
                self._verdicts.clear()
            verdict = self._verdicts[host] = self.rules.allows(host)
        return verdict

    def admit_udp(self, host: str) -> str | None:
        """``None`` if a datagram from *host* may be served, else ``"udp_refused_access"``."""
        if not self._filters:
            return None
        return None if self.allowed(host) else "udp_refused_access"

    def admit_tcp(self, host: str | None, now: float) -> str | None:
        """
        ``None`` if a new connection from *host* (``None``: a peer without an IP
        address, a UNIX socket, which no rule applies to) may be served, else the
        refusal counter: ``tcp_refused_access`` or ``tcp_refused_rate``.
        """
        if host is None:
            return None
        if self._filters and not self.allowed(host):
            return "tcp_refused_access"
        rate = self._rate
        if not rate:
            return None
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._new_bucket(host, now)
        tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if tokens < 1.0:
            bucket.tokens = tokens
            return "tcp_refused_rate"
        bucket.tokens = tokens - 1.0
        return None

    def _new_bucket(self, host: str, now: float) -> _Bucket:
        maximum = self.rules.max_sources
        if maximum and len(self._buckets) >= maximum:
            if now >= self._next_prune:
                self.prune(now)
            if len(self._buckets) >= maximum:
                return self._overflow
        bucket = _Bucket(self._burst, now)
        self._buckets[host] = bucket
        return bucket

    def prune(self, now: float) -> int:
        """Forget every source whose bucket has refilled; return how many."""
        refill = self._burst / self._rate if self._rate else 0.0
        self._next_prune = now + max(refill, 1.0)
        stale = [h for h, b in self._buckets.items() if now - b.stamp >= refill]
        for host in stale:
            del self._buckets[host]
        return len(stale)
