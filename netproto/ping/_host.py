"""
Pinging one host: per-probe results, statistics, and :class:`Ping`, which
sends probes at an interval and reports each outcome and a final summary.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from netproto._results import Results
from netproto.ping._codec import Packet, describe_error
from netproto.ping._probes import DAMAGED, DUPLICATE, ERROR, LATE, PENDING, REPLY, Payloads, Probe
from netproto.ping._rapid import RapidSender, rapid_sender
from netproto.ping._socket import IcmpSocket

__all__ = ["Ping", "ProbeResult", "Statistics", "Summary"]

_BURST = 256
_QUEUED = 10_000

# ProbeResult kinds beyond the table's verdicts.
TIMEOUT = "timeout"
SEND_ERROR = "send-error"
OUTSTANDING = "outstanding"


class ProbeResult(NamedTuple):
    """What became of one probe, or what one packet about it was."""

    host: str
    """The target address."""
    seq: int
    """The probe's number for this host, from 1 (ping's ``icmp_seq``)."""
    kind: str
    """``reply``, ``duplicate``, ``damaged``, ``error``, ``late``, ``timeout``,
    ``send-error``, or (with ``outstanding=True``) ``outstanding``: the probe
    had no answer yet when the next one was sent (ping(8)'s ``-O``)."""
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
            host=self.host,
            transmitted=self.transmitted,
            received=self.received,
            duplicates=self.duplicates,
            damaged=self.damaged,
            errors=self.errors,
            late=self.late,
            min=low,
            avg=mean,
            max=high,
            mdev=mdev,
            elapsed=elapsed,
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


class Ping:
    """
    A running ping of one host. Results arrive through *on_result*, through
    ``async for result in ping``, or both (iteration sees every result from
    the first, keeping at most the last 10,000 not yet consumed);
    :attr:`done` fires with the :class:`Summary` (or, if *on_result* raised,
    fails with that exception, the ping stopped).

    With *iterate* False, results go to *on_result* only (none is kept for
    ``async for``, which then raises :class:`TypeError`), and at *interval*
    0 on a raw IPv4 socket the probes go back to back, as iputils' ``-i
    0`` sends them: the next as soon as the last one's reply is matched (or
    10 ms without it), many between two turns of the reactor.
    """

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
        pattern: bytes = b"",
        outstanding: bool = False,
        iterate: bool = True,
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
        self._payloads = Payloads(size, pattern)
        self._outstanding = outstanding
        self._last: Probe | None = None
        self._started = sock.clock()
        self._waiting = 0
        self._next_call: Any = None
        self._deadline_call: Any = None
        self._results: Results[ProbeResult] = Results(on_result, keep=_QUEUED if iterate else 0)
        self._iterate = iterate
        self._report = iterate or on_result is not None
        self._finished = False
        self._rapid: RapidSender | None = None
        if interval == 0 and not iterate and not outstanding:
            self._rapid = rapid_sender(self)
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
        if self._rapid is not None:
            self._rapid.run()
            return
        self._next_call = None
        # With no interval, send the next probe as soon as the last one is
        # answered, up to a burst per turn of the reactor.
        sock = self.socket
        stats = self.statistics
        payload = self._payloads.next
        target, timeout, count = self.target, self.timeout, self.count
        for _ in range(_BURST if self.interval == 0 else 1):
            if self._finished:
                return
            last = self._last
            if self._outstanding and last is not None and last.state is PENDING:
                self._emit(ProbeResult(target, last.number, OUTSTANDING))
            probe = Probe(target, payload(), self, stats.transmitted + 1)
            self._last = probe
            if not sock.send(probe, timeout):
                self._next_call = self.reactor.callLater(0.001, self._send)
                return
            stats.transmitted += 1
            self._waiting += 1
            # On loopback the reply is already there: read it now, not after
            # a turn of the reactor, so that its RTT is the network's, not ours.
            # (One packet: the rest, if any, waits for the reactor.)
            sock.drain(1)
            if self._finished:
                return
            if count is not None and not self._more():
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
        if self._report:
            failure = self._results.emit(
                ProbeResult(self.target, probe.number, REPLY, probe.target, ttl, size, rtt)
            )
            if failure is not None:
                self._fail(failure)
                return
        count = self.count
        # _more() and _check_done(), inlined: this runs for every reply.
        if (
            count is not None
            and (stats.received if self.deadline is not None else stats.transmitted) >= count
        ):
            if self._next_call is not None:
                self._next_call.cancel()
                self._next_call = None
            if self._waiting <= 0:
                self.stop()
            return
        rapid = self._rapid
        if rapid is not None and rapid.waiting:
            rapid.resume()

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
        self._emit(
            ProbeResult(
                self.target,
                probe.number,
                verdict,
                packet.source,
                packet.ttl,
                packet.size,
                now - probe.sent,
                error,
            )
        )

    def on_send_error(self, probe: Probe, error: OSError) -> None:
        """Called by the socket when a probe cannot be sent (no route...)."""
        self.statistics.errors += 1
        self._waiting -= 1
        self._emit(
            ProbeResult(self.target, probe.number, SEND_ERROR, error=error.strerror or str(error))
        )

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
        failure = self._results.emit(result)
        if failure is not None:
            # A consumer that fails ends the ping: done errbacks with it.
            self._fail(failure)

    def __aiter__(self) -> AsyncIterator[ProbeResult]:
        if not self._iterate:
            raise TypeError("this ping was started with iterate=False: use on_result")
        return self._results.__aiter__()

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
        self._results.close()

    def stop(self) -> None:
        """Stop now (idempotent): no more probes; :attr:`done` fires with the summary."""
        if self._finished:
            return
        # Probes still waiting are abandoned: their replies are ignored.
        summary = self.summary()
        self._halt()
        self.done.callback(summary)
