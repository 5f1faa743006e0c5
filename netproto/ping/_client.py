"""
:class:`PingClient`, which owns the ICMP sockets of a program and runs pings
and sweeps over them, and the one-call forms :func:`ping` and :func:`sweep`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred

from netproto.ping._host import Ping, ProbeResult, Summary
from netproto.ping._open import AUTO
from netproto.ping._socket import IcmpSocket
from netproto.ping._sweep import Sweep
from netproto.ping._targets import TargetSpace, address_text
from netproto.ping._verdicts import HostResult, SweepSummary
from netproto.util import AddressError, parse_ip

__all__ = ["PingClient", "ping", "sweep"]


class PingClient:
    """
    The ICMP sockets of one program: one per address family, opened on first
    use in *mode* (``auto``, ``raw`` or ``dgram``), shared by every
    :meth:`ping` and :meth:`sweep` made through this client.

    *ttl*, *source* (a local address) and *interface* (a device name) apply
    to every probe; *clock* (monotonic seconds) times the round trips.
    """

    def __init__(
        self,
        reactor: Any,
        mode: str = AUTO,
        *,
        ttl: int | None = None,
        source: str | None = None,
        interface: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reactor = reactor
        self.mode = mode
        self.ttl = ttl
        self.source = source
        self.interface = interface
        self.clock = clock
        self._sockets: dict[int, IcmpSocket] = {}

    def socket_for(self, version: int) -> IcmpSocket:
        """The socket for IPv*version*, opened and reading.

        :raises netproto.ping.PingPermissionError: no ICMP socket may be opened.
        """
        sock = self._sockets.get(version)
        if sock is None:
            family = socket.AF_INET6 if version == 6 else socket.AF_INET
            source = self.source
            if source is not None and parse_ip(source).version != version:
                raise AddressError(f"source {source} is not an IPv{version} address")
            sock = IcmpSocket(
                self.reactor,
                family,
                self.mode,
                ttl=self.ttl,
                source=source,
                interface=self.interface,
                clock=self.clock,
            )
            sock.start()
            self._sockets[version] = sock
        return sock

    def ping(
        self,
        host: str,
        *,
        count: int | None = 4,
        interval: float = 1.0,
        timeout: float = 10.0,
        deadline: float | None = None,
        size: int = 56,
        on_result: Callable[[ProbeResult], object] | None = None,
        pattern: bytes = b"",
        outstanding: bool = False,
        iterate: bool = True,
    ) -> Ping:
        """
        Start pinging *host* (an address literal): *count* probes (None: until
        :meth:`Ping.stop` or *deadline*), one every *interval* seconds, each
        waiting up to *timeout* seconds, *size* payload bytes. With a
        *deadline* (seconds), stop then at the latest; with a count too,
        stop as soon as *count* replies came back (ping(8)'s ``-c -w``).
        *pattern* fills the payload after its random cookie (``-p``);
        *outstanding* reports a probe still unanswered when the next one
        goes (an ``outstanding`` result, ``-O``). With *iterate* False the
        results go to *on_result* only, never to ``async for``; at
        *interval* 0 on a raw IPv4 socket the probes then go back to back
        (see :class:`Ping`).
        """
        target = address_text(host)
        sock = self.socket_for(parse_ip(target).version)
        return Ping(
            sock,
            target,
            count=count,
            interval=interval,
            timeout=timeout,
            deadline=deadline,
            size=size,
            on_result=on_result,
            pattern=pattern,
            outstanding=outstanding,
            iterate=iterate,
        )

    def sweep(self, targets: Iterable[str] | TargetSpace, **options: Any) -> Sweep:
        """Ping many targets at a bounded rate: see :class:`netproto.ping.Sweep`."""
        return Sweep(self, targets, **options)

    def close(self) -> None:
        """Close every socket; probes still waiting are abandoned."""
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


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
    Ping every address of *targets* (literals, CIDR and ``FIRST-LAST``
    ranges, see :class:`TargetSpace`) with a client of its own; the Deferred fires with
    the :class:`SweepSummary`. *options* are those of :class:`Sweep`
    (``count``, ``interval``, ``timeout``, ``rate``, ``size``, ``retries``,
    ``seed``, ``shard``, ``start``). Cancelling
    the Deferred stops the sweep; it then fires with the summary so far.
    """
    client = PingClient(reactor, mode, ttl=ttl, source=source)
    try:
        running = client.sweep(TargetSpace(targets), on_host=on_host, **options)
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
