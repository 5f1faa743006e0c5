"""
ICMP echo (ping) for IPv4 and IPv6, on Twisted.

Three layers:

- the codec (:func:`echo_request`, :func:`parse_ipv4`, :func:`parse_icmpv4`,
  :func:`parse_icmpv6`, :class:`Packet`) builds requests and parses anything
  an ICMP socket delivers, never raising;
- :class:`ProbeTable` decides what a packet is to us: our reply, a
  duplicate, a late reply, an ICMP error about one of our probes, damaged,
  malformed, or not ours, matching identifier, sequence number, source
  address and a per-probe random cookie;
- :class:`PingClient` owns one ICMP socket per address family (raw, or a
  Linux unprivileged ping socket, chosen automatically) and runs
  :class:`Ping` (one host) and :class:`Sweep` (many hosts and CIDR ranges
  at a bounded rate) over it.

:func:`ping` and :func:`sweep` are the one-call forms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred

from netproto._icmp import (
    ECHO_REPLY,
    ECHO_REQUEST,
    ERROR,
    MALFORMED,
    OTHER,
    Packet,
    describe_error,
    echo_request,
    icmpv6_checksum,
    parse_icmpv4,
    parse_icmpv6,
    parse_ipv4,
)
from netproto._pinger import Ping, PingClient, ProbeResult, Statistics, Summary
from netproto._pingsocket import AUTO, DGRAM, RAW, IcmpSocket, PingPermissionError
from netproto._probes import (
    DAMAGED,
    DUPLICATE,
    LATE,
    NOT_OURS,
    REPLY,
    Probe,
    ProbeTable,
)
from netproto._sweep import HostResult, Sweep, SweepSummary, expand_targets

__all__ = [
    "AUTO",
    "DAMAGED",
    "DGRAM",
    "DUPLICATE",
    "ECHO_REPLY",
    "ECHO_REQUEST",
    "ERROR",
    "LATE",
    "MALFORMED",
    "NOT_OURS",
    "OTHER",
    "RAW",
    "REPLY",
    "HostResult",
    "IcmpSocket",
    "Packet",
    "Ping",
    "PingClient",
    "PingPermissionError",
    "Probe",
    "ProbeResult",
    "ProbeTable",
    "Statistics",
    "Summary",
    "Sweep",
    "SweepSummary",
    "describe_error",
    "echo_request",
    "expand_targets",
    "icmpv6_checksum",
    "parse_icmpv4",
    "parse_icmpv6",
    "parse_ipv4",
    "ping",
    "sweep",
]


def ping(
    reactor: Any,
    host: str,
    *,
    mode: str = AUTO,
    ttl: int | None = None,
    source: str | None = None,
    on_result: Callable[[ProbeResult], object] | None = None,
    **options: Any,
) -> Deferred[Summary]:
    """
    Ping *host* (an address literal) with a client of its own, closed at the
    end; the Deferred fires with the :class:`Summary`. *options* are those
    of :meth:`PingClient.ping` (``count``, ``interval``, ``timeout``,
    ``deadline``, ``size``). Cancelling the Deferred stops the ping; it then
    fires with the summary so far.

    :raises PingPermissionError: no ICMP socket may be opened.
    """
    client = PingClient(reactor, mode, ttl=ttl, source=source)
    try:
        running = client.ping(host, on_result=on_result, **options)
    except BaseException:
        client.close()
        raise
    return _owned(client, running.done, running.stop)


def sweep(
    reactor: Any,
    targets: Iterable[str],
    *,
    mode: str = AUTO,
    ttl: int | None = None,
    source: str | None = None,
    on_host: Callable[[HostResult], object] | None = None,
    **options: Any,
) -> Deferred[SweepSummary]:
    """
    Ping every address of *targets* (literals and CIDR ranges, see
    :func:`expand_targets`) with a client of its own; the Deferred fires with
    the :class:`SweepSummary`. *options* are those of :class:`Sweep`
    (``count``, ``interval``, ``timeout``, ``rate``, ``size``). Cancelling
    the Deferred stops the sweep; it then fires with the summary so far.
    """
    client = PingClient(reactor, mode, ttl=ttl, source=source)
    try:
        running = client.sweep(expand_targets(targets), on_host=on_host, **options)
    except BaseException:
        client.close()
        raise
    return _owned(client, running.done, running.stop)


def _owned(client: PingClient, done: Deferred[Any], stop: Callable[[], None]) -> Deferred[Any]:
    """A Deferred for *done* that stops the work when cancelled and closes *client* after."""
    outer: Deferred[Any] = Deferred(lambda _: stop())

    def finished(result: object) -> object:
        client.close()
        if not outer.called:
            outer.callback(result)
        return result

    done.addBoth(finished)
    return outer
