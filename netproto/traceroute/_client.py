"""
Starting a trace: :func:`trace` checks the options, opens the prober of the
method asked for and returns the running :class:`~netproto.traceroute.Trace`;
:func:`traceroute` is the one-call form, a Deferred of the summary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from netproto.ping import AUTO, DGRAM, RAW
from netproto.traceroute._codec import BASE_PORT, UDP_PORT
from netproto.traceroute._hops import Hop, TraceSummary
from netproto.traceroute._icmp import IcmpProber
from netproto.traceroute._trace import Prober, Trace
from netproto.traceroute._udp import UdpProber
from netproto.util import AddressError, canonical, parse_ip

__all__ = ["ICMP", "METHODS", "PARIS", "UDP", "trace", "traceroute"]

UDP = "udp"
"""UDP probes, one destination port per probe from 33434 up (traceroute(8)'s default)."""
PARIS = "paris"
"""UDP probes of one constant flow (Paris traceroute, traceroute(8)'s ``-U``): one
source port, one destination port (53 by default), so that load balancers
hashing addresses and ports keep every probe on one path."""
ICMP = "icmp"
"""ICMP echo requests (traceroute(8)'s ``-I``)."""
METHODS = (UDP, PARIS, ICMP)

_MAX_PAYLOAD = 65507


def _check(
    target: str,
    method: str,
    mode: str,
    probes: int,
    wait: float,
    here: float,
    near: float,
    simultaneous: int,
    size: int,
    port: int,
    max_hops: int,
) -> tuple[str, int]:
    """The canonical target and its IP version; ValueError naming what is wrong."""
    if method not in METHODS:
        raise ValueError(f"method {method!r}: use one of {', '.join(METHODS)}")
    if mode not in (AUTO, RAW, DGRAM):
        raise ValueError(f"mode {mode!r}: use auto, raw or dgram")
    if not 1 <= probes <= 10:
        raise ValueError(f"probes {probes}: from 1 to 10 per hop")
    if not 1 <= simultaneous <= 1024:
        raise ValueError(f"simultaneous {simultaneous}: from 1 to 1024 probes")
    if not (isinstance(wait, (int, float)) and math.isfinite(wait) and wait > 0):
        raise ValueError(f"wait {wait!r}: a positive number of seconds")
    for name, factor in (("here", here), ("near", near)):
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor >= 0):
            raise ValueError(f"{name} {factor!r}: a factor of 0 or more")
    if not 0 <= size <= _MAX_PAYLOAD:
        raise ValueError(f"size {size}: from 0 to {_MAX_PAYLOAD} payload bytes")
    address = parse_ip(target)
    if method != ICMP:
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port}: from 1 to 65535")
        if method == UDP and port + max_hops * probes - 1 > 65535:
            raise ValueError(
                f"port {port}: {max_hops} hops of {probes} probes need ports up to "
                f"{port + max_hops * probes - 1}, past 65535"
            )
    return canonical(address), address.version


def trace(
    reactor: Any,
    target: str,
    *,
    method: str = UDP,
    mode: str = AUTO,
    probes: int = 3,
    first_hop: int = 1,
    max_hops: int = 30,
    wait: float = 5.0,
    here: float = 3.0,
    near: float = 10.0,
    simultaneous: int = 16,
    size: int = 32,
    port: int | None = None,
    source: str | None = None,
    interface: str | None = None,
    on_hop: Callable[[Hop], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Trace:
    """
    Start tracing the path to *target*, an IP address literal.

    :param method: :data:`UDP`, :data:`PARIS` or :data:`ICMP`.
    :param mode: ``auto`` (a raw ICMP socket when permitted, else the
        unprivileged way), ``raw`` or ``dgram``. Unprivileged, UDP answers are
        read from the UDP socket's error queue, ICMP ones through a Linux ping
        socket (``net.ipv4.ping_group_range`` must admit the caller's group).
    :param probes: probes per hop, sent in parallel.
    :param first_hop: the first TTL (IPv6 hop limit) probed.
    :param max_hops: the last TTL probed if the destination is not reached.
    :param wait: seconds to wait for each probe's answer, at most.
    :param here: wait no longer than *here* times the round trip of an answer
        from the same hop (0: no such rule), as traceroute(8)'s ``-w
        MAX,HERE,NEAR``...
    :param near: ... else *near* times that of an answer from a later hop.
    :param simultaneous: probes in flight at once (over several hops; a
        constant flow keeps to one hop at a time).
    :param size: payload bytes of each probe (traceroute(8)'s packet length
        less the IP and UDP or ICMP headers); a random cookie starts it.
    :param port: UDP: the first destination port (33434), or the one port of a
        constant flow (53).
    :param source: the local address to send from.
    :param interface: the device to send through (``SO_BINDTODEVICE``).
    :param on_hop: called with each :class:`Hop`, in order.
    :param clock: monotonic seconds, for the round-trip times.
    :raises netproto.util.AddressError: *target* is not an address literal.
    :raises ValueError: an option out of range.
    :raises TracePermissionError: no socket may be opened in *mode*.
    :raises OSError: the sockets cannot be set up (a source that is not local...).
    """
    if port is None:
        port = UDP_PORT if method == PARIS else BASE_PORT
    address, version = _check(
        target, method, mode, probes, wait, here, near, simultaneous, size, port, max_hops
    )
    if source is not None and parse_ip(source).version != version:
        raise AddressError(f"source {source} is not an IPv{version} address")
    prober: Prober
    if method == ICMP:
        prober = IcmpProber(
            reactor,
            address,
            version,
            mode=mode,
            source=source,
            interface=interface,
            clock=clock,
            wait=wait,
        )
    else:
        prober = UdpProber(
            reactor,
            address,
            version,
            mode=mode,
            flow=method == PARIS,
            port=port,
            source=source,
            interface=interface,
            clock=clock,
        )
    try:
        return Trace(
            reactor,
            prober,
            address,
            probes=probes,
            first_hop=first_hop,
            max_hops=max_hops,
            wait=wait,
            here=here,
            near=near,
            simultaneous=simultaneous,
            size=size,
            on_hop=on_hop,
            clock=clock,
        )
    except BaseException:
        prober.close()
        raise


def traceroute(reactor: Any, target: str, **options: Any) -> Deferred[TraceSummary]:
    """
    Trace the path to *target* (options as for :func:`trace`); the Deferred
    fires with the :class:`TraceSummary`. Cancelling it stops the trace: it
    then fires with the path found so far.
    """
    running = trace(reactor, target, **options)
    outer: Deferred[TraceSummary] = Deferred(lambda _: running.stop())

    def finished(result: Any) -> Any:
        if not outer.called:
            if isinstance(result, TraceSummary):
                outer.callback(result)
            else:
                outer.errback(result)
        return None

    running.done.addBoth(finished)
    return outer
