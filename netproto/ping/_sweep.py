"""
Pinging many targets at once, like fping: hosts and CIDR ranges, a bounded
probe rate (or as fast as the machine allows), one verdict per target.

Probes go out in batches; after each batch the sockets are drained on the
spot, so replies never pile up in the kernel's receive buffer however fast
the sweep runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from netproto.ping._codec import Packet, describe_error
from netproto.ping._probes import DAMAGED, DUPLICATE, ERROR, LATE, Payloads, Probe
from netproto.ping._socket import IcmpSocket
from netproto.ping._targets import TargetList, expand_targets

__all__ = ["HostResult", "SocketSource", "Sweep", "SweepSummary"]

_SLICE = 0.005
"""At full speed, how long one turn of the reactor may spend sending."""


class SocketSource(Protocol):
    """What a sweep needs of its client (a :class:`~netproto.ping.PingClient`)."""

    reactor: Any
    clock: Callable[[], float]

    def socket_for(self, version: int) -> IcmpSocket:
        """The socket for IPv*version*, opened and reading."""


class HostResult(NamedTuple):
    """The verdict on one target of a sweep."""

    host: str
    alive: bool
    """True if at least one probe was answered."""
    transmitted: int
    received: int
    duplicates: int
    errors: int
    rtts: tuple[float, ...]
    """Round-trip times of the replies, in seconds."""
    error: str | None
    """The last ICMP error (or send error) about this target, if any."""

    @property
    def rtt(self) -> float | None:
        """The mean round-trip time in seconds, None when no reply came."""
        return sum(self.rtts) / len(self.rtts) if self.rtts else None


@dataclass(frozen=True)
class SweepSummary:
    """The totals of a sweep."""

    targets: int
    alive: int
    unreachable: int
    transmitted: int
    received: int
    duplicates: int
    damaged: int
    errors: int
    late: int
    elapsed: float
    """Seconds from the first probe to the last verdict."""
    complete: bool
    """False when the sweep was stopped before every target had its verdict."""


class Sweep:
    """
    Ping every target (address literals and CIDR ranges, as
    :func:`expand_targets` takes them) *count* times (rounds *interval* seconds apart), each
    probe waiting up to *timeout* seconds, at most *rate* probes a second
    (0: as fast as the machine allows, *batch* probes a turn of the
    reactor). *on_host* gets each :class:`HostResult` as soon as its target
    is decided; :attr:`done` fires with the :class:`SweepSummary` (or, if
    *on_host* raised, fails with that exception, the sweep stopped).
    """

    def __init__(
        self,
        client: SocketSource,
        targets: Iterable[str],
        *,
        count: int = 1,
        interval: float = 1.0,
        timeout: float = 1.0,
        rate: float = 0.0,
        size: int = 56,
        batch: int = 128,
        on_host: Callable[[HostResult], object] | None = None,
    ) -> None:
        if isinstance(targets, TargetList):
            self.targets: list[str] = targets
        else:
            self.targets = expand_targets(targets)
        n = len(self.targets)
        self.reactor = client.reactor
        self.clock = client.clock
        self.count = count
        self.interval = interval
        self.timeout = timeout
        self.rate = rate
        self.batch = max(1, batch)
        self.on_host = on_host
        self.done: Deferred[SweepSummary] = Deferred()
        by_version: dict[bool, IcmpSocket] = {}
        socks: list[IcmpSocket] = []
        for target in self.targets:
            v6 = ":" in target
            sock = by_version.get(v6)
            if sock is None:
                sock = by_version[v6] = client.socket_for(6 if v6 else 4)
            socks.append(sock)
        self._socks = socks
        self._unique_socks = list(by_version.values())
        self._payloads = Payloads(size)
        self._sent = [0] * n
        self._received = [0] * n
        self._resolved = [0] * n
        self._duplicates = [0] * n
        self._errors = [0] * n
        self._rtts: dict[int, list[float]] = {}
        self._error_text: list[str | None] = [None] * n
        self._reported = [False] * n
        self.damaged = 0
        self.late = 0
        self.decided = 0
        """Targets with a verdict so far."""
        self._index = 0
        self._round = 0
        self._round_at = 0.0
        self._total_sent = 0
        self._retry: list[Probe] = []
        self._call: Any = None
        self._finished = False
        self._started = self.clock()
        if n == 0:
            self._finish(True)
        else:
            self._step()

    # -- sending ---------------------------------------------------------

    def _step(self) -> None:
        """Send what is due; at full speed, batch after batch for up to a time slice."""
        self._call = None
        clock = self.clock
        slice_end = clock() + _SLICE
        while not self._finished:
            now = clock()
            if now < self._round_at:
                self._later(self._round_at - now)
                return
            delay = self._send_batch(now)
            if delay is None:
                return
            if delay > 0 or self.rate > 0 or now >= slice_end:
                self._later(delay)
                return

    def _send_batch(self, now: float) -> float | None:
        """
        Send one batch (fewer when the rate says so) and drain the sockets;
        return the delay before the next batch, None when all is sent.
        """
        budget = self.batch
        if self.rate > 0:
            allowed = int((now - self._started) * self.rate) + 1 - self._total_sent
            budget = min(budget, allowed)
            if budget <= 0:
                return max(0.0, self._total_sent / self.rate - (now - self._started))
        targets = self.targets
        payloads = self._payloads.next
        sent = self._sent
        n = len(targets)
        index = self._index
        batch = self._retry
        self._retry = []
        budget -= len(batch)
        while budget > 0 and self._round < self.count:
            batch.append(Probe(targets[index], payloads(), self, index))
            sent[index] += 1
            budget -= 1
            index += 1
            if index == n:
                index = 0
                self._round += 1
                self._round_at = self._started + self._round * self.interval
                if self._round < self.count and self._round_at > now:
                    break
        self._index = index
        self._total_sent += len(batch)
        if len(self._unique_socks) == 1:
            done = self._socks[0].send_many(batch, self.timeout)
        else:
            done = self._send_mixed(batch)
        if done < len(batch):
            self._retry = batch[done:]
            self._total_sent -= len(self._retry)
        for sock in self._unique_socks:
            sock.drain()
        if self._finished or (self._round >= self.count and not self._retry):
            return None
        return 0.001 if self._retry else 0.0

    def _send_mixed(self, batch: list[Probe]) -> int:
        """Send a batch bound for both address families, in order."""
        socks = self._socks
        done = 0
        while done < len(batch):
            sock = socks[batch[done].number]
            run = done
            while run < len(batch) and socks[batch[run].number] is sock:
                run += 1
            sent = sock.send_many(batch[done:run], self.timeout)
            done += sent
            if done < run:
                break
        return done

    def _later(self, delay: float) -> None:
        if self._call is None:
            self._call = self.reactor.callLater(max(0.0, delay), self._step)

    # -- what the sockets tell us ------------------------------------------

    def on_reply(self, probe: Probe, ttl: int | None, size: int, now: float) -> None:
        """Called by a socket for the reply credited to one of our probes."""
        if self._finished:
            return
        index = probe.number
        self._received[index] += 1
        rtts = self._rtts.get(index)
        if rtts is None:
            self._rtts[index] = [now - probe.sent]
        else:
            rtts.append(now - probe.sent)
        resolved = self._resolved
        resolved[index] += 1
        if resolved[index] >= self.count and not self._reported[index]:
            self._report(index)
            if self.decided == len(self.targets):
                self._finish(True)

    def on_packet(self, verdict: str, probe: Probe, packet: Packet, now: float) -> None:
        """Called by a socket for any other packet about one of our probes."""
        if self._finished:
            return
        index = probe.number
        if verdict is DUPLICATE:
            self._duplicates[index] += 1
        elif verdict is ERROR:
            self._errors[index] += 1
            version = 6 if ":" in probe.target else 4
            self._error_text[index] = (
                f"{describe_error(version, packet.type, packet.code)} from {packet.source}"
            )
        elif verdict is DAMAGED:
            self.damaged += 1
        elif verdict is LATE:
            self.late += 1

    def on_send_error(self, probe: Probe, error: OSError) -> None:
        """Called by a socket when a probe cannot be sent (no route...)."""
        if not self._finished:
            self._errors[probe.number] += 1
            self._error_text[probe.number] = error.strerror or str(error)
            self._resolve(probe.number)

    def on_expired(self, probe: Probe) -> None:
        """Called by a socket when a probe's time is up."""
        if not self._finished:
            self._resolve(probe.number)

    def _resolve(self, index: int) -> None:
        self._resolved[index] += 1
        if self._resolved[index] >= self.count and not self._reported[index]:
            self._report(index)
            if self.decided == len(self.targets):
                self._finish(True)

    def _report(self, index: int) -> None:
        self._reported[index] = True
        self.decided += 1
        if self.on_host is not None and not self._finished:
            try:
                self.on_host(self.result(index))
            except Exception:
                # A consumer that fails ends the sweep: done errbacks with it.
                failure = Failure()
                self._finish(False, failure)

    def result(self, index: int) -> HostResult:
        """The verdict on target number *index* as it stands."""
        return HostResult(
            host=self.targets[index],
            alive=self._received[index] > 0,
            transmitted=self._sent[index],
            received=self._received[index],
            duplicates=self._duplicates[index],
            errors=self._errors[index],
            rtts=tuple(self._rtts.get(index, ())),
            error=self._error_text[index],
        )

    def results(self) -> list[HostResult]:
        """The verdict on every target, in target order."""
        return [self.result(i) for i in range(len(self.targets))]

    # -- the end ---------------------------------------------------------

    def stop(self) -> None:
        """
        Stop now (idempotent): targets not yet decided are reported as
        they stand (alive if a reply came), and :attr:`done` fires.
        """
        if self._finished:
            return
        for index in range(len(self.targets)):
            if not self._reported[index] and self._sent[index]:
                self._report(index)
        self._finish(self.decided == len(self.targets))

    def _finish(self, complete: bool, failure: Failure | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if failure is not None:
            self.done.errback(failure)
        else:
            self.done.callback(self.summary(complete))

    def summary(self, complete: bool = True) -> SweepSummary:
        """The totals as they stand."""
        received = self._received
        reported = self._reported
        alive = sum(1 for r in received if r)
        unreachable = sum(1 for i, r in enumerate(received) if not r and reported[i])
        return SweepSummary(
            targets=len(self.targets),
            alive=alive,
            unreachable=unreachable,
            transmitted=sum(self._sent),
            received=sum(self._received),
            duplicates=sum(self._duplicates),
            damaged=self.damaged,
            errors=sum(self._errors),
            late=self.late,
            elapsed=self.clock() - self._started,
            complete=complete,
        )
