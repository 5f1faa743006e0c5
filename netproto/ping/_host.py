"""
Pinging one host: the client that owns the sockets, per-probe results,
statistics, and :class:`Ping`, which sends probes at an interval and
reports each outcome and a final summary.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from netproto._icmp import COOKIE_SIZE, Packet, describe_error
from netproto._pingsocket import AUTO, IcmpSocket
from netproto._probes import DAMAGED, DUPLICATE, ERROR, LATE, PENDING, REPLY, Probe
from netproto.util import AddressError, parse_ip

__all__ = [
    "Ping",
    "PingClient",
    "ProbeResult",
    "Statistics",
    "Summary",
]

_BURST = 256
_QUEUED = 10_000

# ProbeResult kinds beyond the table's verdicts.
TIMEOUT = "timeout"
SEND_ERROR = "send-error"


class ProbeResult(NamedTuple):
    """What became of one probe, or what one packet about it was."""

    host: str
    """The target address."""
    seq: int
    """The probe's number for this host, from 1 (ping's ``icmp_seq``)."""
    kind: str
    """``reply``, ``duplicate``, ``damaged``, ``error``, ``late``, ``timeout``
    or ``send-error``."""
    source: str | None = None
    """Who sent the packet: the host, or the router reporting an error."""
    ttl: int | None = None
    """The reply's IPv4 TTL or IPv6 hop limit, when known."""
    bytes: int = 0
    """Size of the ICMP message received, as ping(8) counts it."""
    rtt: float | None = None
    """Seconds from send to receive (replies, duplicates, errors)."""
    error: str | None = None
    """For errors: ping(8)'s words (``Destination Host Unreachable``)."""


@dataclass
class Statistics:
    """Running counts for one host, ping(8)'s statistics block."""

    host: str
    transmitted: int = 0
    received: int = 0
    duplicates: int = 0
    damaged: int = 0
    errors: int = 0
    late: int = 0
    rtts: list[float] = field(default_factory=list)

    def summary(self, elapsed: float) -> Summary:
        """The figures as they stand, *elapsed* seconds after the first probe."""
        rtts = self.rtts
        if rtts:
            mean = sum(rtts) / len(rtts)
            variance = max(0.0, sum(r * r for r in rtts) / len(rtts) - mean * mean)
            low, high, mdev = min(rtts), max(rtts), math.sqrt(variance)
        else:
            mean = low = high = mdev = None  # type: ignore[assignment]
        return Summary(
            host=self.host, transmitted=self.transmitted, received=self.received,
            duplicates=self.duplicates, damaged=self.damaged, errors=self.errors,
            late=self.late, min=low, avg=mean, max=high, mdev=mdev, elapsed=elapsed,
        )


@dataclass(frozen=True)
class Summary:
    """The final statistics of a ping: counts and RTTs in seconds (None without replies)."""

    host: str
    transmitted: int
    received: int
    duplicates: int
    damaged: int
    errors: int
    late: int
    min: float | None
    avg: float | None
    max: float | None
    mdev: float | None
    elapsed: float

    @property
    def loss(self) -> float:
        """Percentage of probes not answered (0 when none was sent)."""
        if not self.transmitted:
            return 0.0
        return 100.0 * (self.transmitted - self.received) / self.transmitted


class _Payloads:
    """Payloads of a fixed size, each starting with a fresh random cookie."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._cookie = min(size, COOKIE_SIZE)
        self._tail = bytes(i & 0xFF for i in range(self._cookie, size))
        self._pool = b""
        self._at = 0

    def next(self) -> bytes:
        n = self._cookie
        if self._at + n > len(self._pool):
            self._pool = os.urandom(max(n, 1) * 4096)
            self._at = 0
        at = self._at
        self._at = at + n
        return self._pool[at : at + n] + self._tail


def address_text(text: str) -> str:
    """
    An address literal in the form sockets report sources in, or
    :class:`~netproto.util.AddressError` (zones such as ``%eth0`` included:
    link-local targets are not supported).
    """
    from netproto._sweep import expand_targets

    if "/" in text:
        raise AddressError(f"{text}: one address, not a range")
    return expand_targets([text])[0]


class PingClient:
    """
    The ICMP sockets of one program: one per address family, opened on first
    use in *mode* (``auto``, ``raw`` or ``dgram``), shared by every
    :meth:`ping` and :meth:`sweep` made through this client.

    *ttl*, *source* (a local address) and *interface* (a device name) apply
    to every probe; *clock* (monotonic seconds) times the round trips.
    """

    log = Logger()

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
            sock = IcmpSocket(self.reactor, family, self.mode, ttl=self.ttl, source=source,
                              interface=self.interface, clock=self.clock)
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
    ) -> Ping:
        """
        Start pinging *host* (an address literal): *count* probes (None: until
        :meth:`Ping.stop` or *deadline*), one every *interval* seconds, each
        waiting up to *timeout* seconds, *size* payload bytes. With a
        *deadline* (seconds), stop then at the latest; with a count too,
        stop as soon as *count* replies came back (ping(8)'s ``-c -w``).
        """
        target = address_text(host)
        sock = self.socket_for(parse_ip(target).version)
        return Ping(sock, target, count=count, interval=interval, timeout=timeout,
                    deadline=deadline, size=size, on_result=on_result)

    def sweep(self, targets: Iterable[str], **options: Any) -> Any:
        """Ping many targets at a bounded rate: see :class:`netproto.ping.Sweep`."""
        from netproto._sweep import Sweep

        return Sweep(self, targets, **options)

    def close(self) -> None:
        """Close every socket; probes still waiting are abandoned."""
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


class Ping:
    """
    A running ping of one host. Results arrive through *on_result*, through
    ``async for result in ping``, or both (iteration sees every result from
    the first, keeping at most the last 10,000 not yet consumed);
    :attr:`done` fires with the :class:`Summary` (or, if *on_result* raised,
    fails with that exception, the ping stopped).
    """

    log = Logger()

    def __init__(
        self,
        sock: IcmpSocket,
        target: str,
        *,
        count: int | None,
        interval: float,
        timeout: float,
        deadline: float | None,
        size: int,
        on_result: Callable[[ProbeResult], object] | None,
    ) -> None:
        self.socket = sock
        self.reactor = sock.reactor
        self.target = target
        self.count = count
        self.interval = interval
        self.timeout = timeout
        self.deadline = deadline
        self.size = size
        self.on_result = on_result
        self.statistics = Statistics(target)
        self.done: Deferred[Summary] = Deferred()
        self._payloads = _Payloads(size)
        self._started = sock.clock()
        self._waiting = 0
        self._next_call: Any = None
        self._deadline_call: Any = None
        self._queue: deque[ProbeResult] = deque(maxlen=_QUEUED)
        self._readers: list[Deferred[ProbeResult | None]] = []
        self._finished = False
        if deadline is not None:
            self._deadline_call = self.reactor.callLater(deadline, self.stop)
        self._send()

    # -- sending ---------------------------------------------------------

    def _more(self) -> bool:
        stats = self.statistics
        if self.count is None:
            return True
        if self.deadline is not None:
            return stats.received < self.count
        return stats.transmitted < self.count

    def _send(self) -> None:
        self._next_call = None
        # With no interval, send the next probe as soon as the last one is
        # answered, up to a burst per turn of the reactor.
        for _ in range(_BURST if self.interval == 0 else 1):
            if self._finished:
                return
            stats = self.statistics
            probe = Probe(self.target, self._payloads.next(), self, stats.transmitted + 1)
            if not self.socket.send(probe, self.timeout):
                self._next_call = self.reactor.callLater(0.001, self._send)
                return
            stats.transmitted += 1
            self._waiting += 1
            # On loopback the reply is already there: read it now, not after
            # a turn of the reactor, so that its RTT is the network's, not ours.
            # (One packet: the rest, if any, waits for the reactor.)
            self.socket.drain(1)
            if self._finished:
                return
            if not self._more():
                self._check_done()
                return
            if probe.state is PENDING:
                break
        self._next_call = self.reactor.callLater(self.interval, self._send)

    # -- what the socket tells us ------------------------------------------

    def on_reply(self, probe: Probe, ttl: int | None, size: int, now: float) -> None:
        """Called by the socket for the reply credited to one of our probes."""
        if self._finished:
            return
        stats = self.statistics
        rtt = now - probe.sent
        stats.received += 1
        stats.rtts.append(rtt)
        self._waiting -= 1
        self._emit(ProbeResult(self.target, probe.number, REPLY, probe.target, ttl, size, rtt))
        if not self._more() and self._next_call is not None:
            self._next_call.cancel()
            self._next_call = None
        self._check_done()

    def on_packet(self, verdict: str, probe: Probe, packet: Packet, now: float) -> None:
        """Called by the socket for any other packet about one of our probes."""
        if self._finished:
            return
        stats = self.statistics
        error = None
        if verdict is DUPLICATE:
            stats.duplicates += 1
        elif verdict is DAMAGED:
            stats.damaged += 1
        elif verdict is ERROR:
            stats.errors += 1
            error = describe_error(self.socket.version, packet.type, packet.code)
        elif verdict is LATE:
            stats.late += 1
        self._emit(ProbeResult(self.target, probe.number, verdict, packet.source, packet.ttl,
                               packet.size, now - probe.sent, error))

    def on_send_error(self, probe: Probe, error: OSError) -> None:
        """Called by the socket when a probe cannot be sent (no route...)."""
        self.statistics.errors += 1
        self._waiting -= 1
        self._emit(ProbeResult(self.target, probe.number, SEND_ERROR,
                               error=error.strerror or str(error)))

    def on_expired(self, probe: Probe) -> None:
        """Called by the socket when a probe's timeout passes unanswered."""
        if self._finished:
            return
        self._waiting -= 1
        self._emit(ProbeResult(self.target, probe.number, TIMEOUT))
        self._check_done()

    def _check_done(self) -> None:
        if self._waiting <= 0 and self._next_call is None and not self._more():
            self.stop()

    # -- results ---------------------------------------------------------

    def _emit(self, result: ProbeResult) -> None:
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                # A consumer that fails ends the ping: done errbacks with it.
                self._fail(Failure())
                return
        if self._readers:
            self._readers.pop(0).callback(result)
        else:
            self._queue.append(result)

    def __aiter__(self) -> AsyncIterator[ProbeResult]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ProbeResult]:
        while True:
            if self._queue:
                yield self._queue.popleft()
                continue
            if self._finished:
                return
            waiter: Deferred[ProbeResult | None] = Deferred()
            self._readers.append(waiter)
            result = await waiter
            if result is None:
                return
            yield result

    def summary(self) -> Summary:
        """The statistics so far."""
        return self.statistics.summary(self.socket.clock() - self._started)

    def _fail(self, failure: Failure) -> None:
        """End the ping because *on_result* raised: :attr:`done` errbacks with it."""
        if self._finished:
            return
        self._halt()
        self.done.errback(failure)

    def _halt(self) -> None:
        self._finished = True
        for call in (self._next_call, self._deadline_call):
            if call is not None and call.active():
                call.cancel()
        self._next_call = self._deadline_call = None
        readers, self._readers = self._readers, []
        for waiter in readers:
            waiter.callback(None)

    def stop(self) -> None:
        """Stop now (idempotent): no more probes; :attr:`done` fires with the summary."""
        if self._finished:
            return
        # Probes still waiting are abandoned: their replies are ignored.
        summary = self.summary()
        self._halt()
        self.done.callback(summary)
