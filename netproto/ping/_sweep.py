"""
Pinging many targets at once, like fping, on memory that does not grow with
the sweep: targets are computed from their ranges (:class:`TargetSpace`),
visited in a seeded pseudo-random order (:class:`Permutation`), and each
probe carries a keyed MAC of its target, number and send time
(:class:`Stamper`), so a reply is validated and timed without a table. What
is left per target is one bit (answered, or decided), and, for ``count > 1``,
the statistics of the targets that answered.

Probes go out in batches; after each batch the sockets are drained on the
spot, so replies never pile up in the kernel's receive buffer. Each batch
remembers where in the walk it started: when its window (the last send plus
the timeout) closes, the walk is replayed over it to find the targets that
did not answer, so no list of outstanding targets is kept either.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from netproto.ping._batch import batch_sender
from netproto.ping._codec import ERROR, Packet, describe_error
from netproto.ping._permutation import Permutation
from netproto.ping._receiving import take_replies
from netproto.ping._sending import send_run
from netproto.ping._socket import IcmpSocket
from netproto.ping._stamp import PROOF_SIZE, Stamper
from netproto.ping._targets import TargetSpace, key_text
from netproto.ping._verdicts import HostResult, SweepSummary

__all__ = ["MAX_PROBES", "HostResult", "SocketSource", "Sweep", "SweepSummary"]

MAX_PROBES = 1 << 32
"""The most targets (times the count) one sweep takes: its bitmap is then 512 MiB."""

_SLICE = 0.005
"""At full speed, how long one turn of the reactor may spend sending."""
_V6 = 1 << 129


class SocketSource(Protocol):
    """What a sweep needs of its client (a :class:`~netproto.ping.PingClient`)."""

    reactor: Any
    clock: Callable[[], float]

    def socket_for(self, version: int) -> IcmpSocket:
        """The socket for IPv*version*, opened and reading."""


class _Window:
    """One batch of probes: where in the walk it started, and when it closes."""

    __slots__ = ("deadline", "number", "start", "steps", "x")

    def __init__(self, number: int, start: int, x: int) -> None:
        self.number = number
        self.start = start
        self.x = x
        self.steps = 0
        self.deadline = 0.0


class Sweep:
    """
    Ping every target of *targets* (a :class:`TargetSpace`, or texts it
    takes: addresses, CIDR and ``A-B`` ranges) *count* times (rounds
    *interval* seconds apart), each probe waiting up to *timeout* seconds, at
    most *rate* probes a second (0: as fast as the machine allows, *batch*
    probes a turn of the reactor), in the pseudo-random order *seed* picks.
    With *retries*, targets that did not answer get up to that many more
    probes, a pass each (count 1 only), each pass waiting *backoff* times
    longer than the one before (fping's ``-B``).

    *shard* ``(k, m)`` takes the *k*-th (0-based) of *m* interleaved parts
    of the order: shards of one seed cover every target once between them.
    *start* resumes a shard's walk at that position (:attr:`resume_step`).

    *on_host* gets each :class:`HostResult` as soon as its target is
    decided; :attr:`done` fires with the :class:`SweepSummary` (or, if
    *on_host* raised, fails with that exception, the sweep stopped).
    """

    def __init__(
        self,
        client: SocketSource,
        targets: Iterable[str] | TargetSpace,
        *,
        count: int = 1,
        interval: float = 1.0,
        timeout: float = 1.0,
        rate: float = 0.0,
        size: int = 56,
        batch: int = 128,
        on_host: Callable[[HostResult], object] | None = None,
        retries: int = 0,
        backoff: float = 1.0,
        seed: int = 0,
        shard: tuple[int, int] = (0, 1),
        start: int = 0,
        key: bytes | None = None,
    ) -> None:
        space = targets if isinstance(targets, TargetSpace) else TargetSpace(targets)
        if size < PROOF_SIZE:
            raise ValueError(f"a sweep's probes need at least {PROOF_SIZE} payload bytes")
        if len(space) * count > MAX_PROBES:
            raise ValueError(f"more than {MAX_PROBES} targets (times -c): too many to sweep")
        if count > 1 and retries:
            raise ValueError("retries apply to a sweep of one probe per target")
        if not 1.0 <= backoff <= 5.0:
            raise ValueError(f"a backoff of {backoff} is not 1 to 5")
        k, m = shard
        if not 0 <= k < m:
            raise ValueError(f"shard {k + 1}/{m} does not exist")
        self.targets = space
        self.reactor = client.reactor
        self.clock = client.clock
        self.count = count
        self.interval = interval
        self.timeout = timeout
        self.rate = rate
        self.batch = max(1, batch)
        self.on_host = on_host
        self.done: Deferred[SweepSummary] = Deferred()
        self.seed = seed
        self.shard = (k, m)
        n = len(space)
        self._n = n
        self._perm = perm = Permutation(n, seed)
        self._mul = perm.stride(m)
        self._prime = perm.prime
        self._positions = perm.positions(k, m)
        self.positions = self._positions
        """Positions of this shard's walk; :attr:`resume_step` reaches it once all is decided."""
        self._first = min(max(0, start), self._positions)
        self._passes = count if count > 1 else retries + 1
        self._rounds = count > 1
        self._waits = [timeout * (1.0 if self._rounds else backoff**p) for p in range(self._passes)]
        """How long each pass's probes wait: *timeout*, times *backoff* per retry."""
        self._bits = bytearray((n * count + 7) // 8)
        self._socks: dict[int, IcmpSocket] = {}
        self._stampers: dict[int, Stamper] = {}
        for version in sorted(space.versions):
            sock = client.socket_for(version)
            self._socks[version] = sock
            self._stampers[version] = Stamper(version, sock.table.ident, size, key)
        self._check_raw4 = self._stampers[4].check_raw4 if 4 in self._stampers else None
        self._batch = None
        if 4 in self._socks:
            self._batch = batch_sender(self._socks[4].socket, self._stampers[4].template)
        self._single = space.spans[0][0] if len(space.spans) == 1 else None
        self._stats: dict[int, list[Any]] = {}
        self._windows: deque[_Window] = deque()
        self._timer: Any = None
        self.covered = 0
        """Targets of this shard probed at least once so far."""
        self.decided = 0
        """Targets with a verdict so far."""
        self.alive = 0
        self.unreachable = 0
        self.transmitted = 0
        self.received = 0
        self.duplicates = 0
        self.damaged = 0
        self.errors = 0
        self.late = 0
        self.rtt_low = float("inf")
        self.rtt_high = 0.0
        self.rtt_total = 0.0
        """Shortest, longest and sum of the credited replies' round trips."""
        self._pass = 0
        self._step = self._first
        self._x = perm.element(k, m, self._first)
        self._pass_at = 0.0
        self._call: Any = None
        self._finished = False
        self._resume = 0
        self.expected = n if m == 1 else (n * (self._positions - self._first)) // perm.period
        """About how many targets this sweep covers (exactly, unsharded)."""
        if m == 1:
            self.expected = n - (n * self._first) // perm.period if self._first else n
        self._started = self.clock()
        for sock in self._socks.values():
            sock.sweeps.append(self)
        self._step_now()

    # -- the walk ----------------------------------------------------------

    @property
    def resume_step(self) -> int:
        """
        The walk position from which a new sweep (same targets, seed and
        shard) picks up what this one has not decided: the start of the
        oldest first-pass batch still open, or where the first pass is.
        """
        for window in self._windows:
            if window.number == 0:
                return window.start
        return self._step if self._pass == 0 else self._positions

    # -- sending ---------------------------------------------------------

    def _step_now(self) -> None:
        """Send what is due; at full speed, batch after batch for up to a time slice."""
        self._call = None
        clock = self.clock
        slice_end = clock() + _SLICE
        while not self._finished:
            now = clock()
            if now < self._pass_at:
                self._later(self._pass_at - now)
                return
            delay = self._send_batch(now)
            if delay is None:
                self._check_done()
                return
            if delay > 0 or self.rate > 0 or now >= slice_end:
                self._later(delay)
                return

    def _next_pass(self, now: float) -> None:
        self._pass += 1
        self._step = self._first
        k, m = self.shard
        self._x = self._perm.element(k, m, self._first)
        if self._rounds:
            self._pass_at = self._started + self._pass * self.interval
        elif self.decided < self.covered and self._windows:
            # A retry pass starts once every window of the last one has closed.
            self._pass_at = self._windows[-1].deadline
        else:
            self._pass_at = now

    def _send_batch(self, now: float) -> float | None:
        """
        Send one batch (fewer when the rate says so) and drain the sockets;
        return the delay before the next batch, None when all is sent.
        """
        budget = self.batch
        if self.rate > 0:
            allowed = int((now - self._started) * self.rate) + 1 - self.transmitted
            budget = min(budget, allowed)
            if budget <= 0:
                return max(0.0, self.transmitted / self.rate - (now - self._started))
        while self._step >= self._positions:
            if self._pass + 1 >= self._passes:
                return None
            self._next_pass(now)
            if self._pass_at > now:
                return self._pass_at - now
        number = self._pass
        window = _Window(number, self._step, self._x)
        blocked = send_run(self, window, budget)
        if window.steps:
            window.deadline = self.clock() + self._waits[number]
            self._windows.append(window)
            if self._timer is None:
                self._arm(window.deadline)
        for sock in self._socks.values():
            sock.drain()
        if self._finished:
            return None
        return 0.001 if blocked else 0.0

    def _later(self, delay: float) -> None:
        if self._call is None and not self._finished:
            self._call = self.reactor.callLater(max(0.0, delay), self._step_now)

    # -- windows closing ---------------------------------------------------

    def _arm(self, deadline: float) -> None:
        self._timer = self.reactor.callLater(max(0.0, deadline - self.clock()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        for sock in self._socks.values():
            sock.drain()
        now = self.clock()
        windows = self._windows
        while windows and windows[0].deadline <= now and not self._finished:
            self._close(windows.popleft())
        if self._finished:
            return
        if windows:
            self._arm(windows[0].deadline)
        self._check_done()

    def _replay(self, window: _Window) -> Iterable[int]:
        """The target indexes *window* probed (and, on retry passes, skipped)."""
        x, mul, p, n = window.x, self._mul, self._prime, self._n
        for _ in range(window.steps):
            if x <= n:
                yield x - 1
            x = x * mul % p

    def _close(self, window: _Window) -> None:
        """A window closed: the targets it leaves undecided on the last pass are."""
        if window.number != self._passes - 1:
            return
        bits = self._bits
        if self._rounds:
            stats = self._stats
            count = self.count
            for index in self._replay(window):
                entry = stats.get(index)
                if entry is not None and entry[0] >= count:
                    continue  # reported when its last reply came
                self._report(index, entry)
                if self._finished:
                    return
        else:
            for index in self._replay(window):
                if bits[index >> 3] >> (index & 7) & 1:
                    continue
                bits[index >> 3] |= 1 << (index & 7)
                self._report(index, None)
                if self._finished:
                    return

    def _check_done(self) -> None:
        if self._finished or self._call is not None:
            return
        if self._step >= self._positions and self._pass + 1 >= self._passes:
            if not self._windows or self.decided >= self.covered:
                self._finish(True)

    # -- what the sockets tell us ------------------------------------------

    def take_raw4(self, data: bytes, now: float) -> bool:
        """
        Take raw IPv4 *data* if it is a plain echo reply (IHL 5, unfragmented)
        whose proof verifies: credited, or a duplicate, late or damaged.
        """
        found = self._check_raw4(data) if self._check_raw4 is not None else None
        if found is None or self._finished:
            return False
        if found[1] is None:
            self.damaged += 1
        else:
            self._reply(found[0], found[1], now)
        return True

    def take_raw4_many(self, datagrams: list[bytes], now: float) -> list[bytes]:
        """
        Take what :meth:`take_raw4` would of raw IPv4 *datagrams* (read at
        *now*), in one pass; return the rest, in order.
        """
        return take_replies(self, datagrams, now)

    def take(self, packet: Packet, now: float) -> bool:
        """Take *packet* (a parsed echo reply or ICMP error) if its proof verifies."""
        if self._finished:
            return False
        address = packet.target if packet.kind is ERROR else packet.source
        stamper = self._stampers.get(6 if address and ":" in address else 4)
        if stamper is None:
            return False
        found = stamper.check(packet)
        if found is None:
            return False
        if packet.kind is ERROR:
            index = self.targets.index_of(found[0])
            if index is not None and found[1] is not None:
                text = describe_error(stamper.version, packet.type, packet.code)
                self._error(index, found[1][0], f"{text} from {packet.source}")
            return True
        self._taken(found, now)
        return True

    def _taken(self, found: tuple[int, tuple[int, float] | None], now: float) -> None:
        key, proof = found
        if proof is None:
            self.damaged += 1
        else:
            self._reply(key, proof, now)

    def _reply(self, key: int, proof: tuple[int, float], now: float) -> None:
        if self._finished:
            return
        number, sent = proof
        single = self._single
        if single is not None:
            index: int | None = key - single
            if not 0 <= key - single < self._n:
                return
        else:
            index = self.targets.index_of(key)
        if index is None or number >= self._passes:
            return
        rtt = now - sent
        if rtt > self._waits[number]:
            self.late += 1
            return
        bit = index * self.count + number if self._rounds else index
        bits = self._bits
        if bits[bit >> 3] >> (bit & 7) & 1:
            self.duplicates += 1
            if self._rounds and index in self._stats:
                self._stats[index][1] += 1
            return
        bits[bit >> 3] |= 1 << (bit & 7)
        self.received += 1
        self.rtt_total += rtt
        if rtt < self.rtt_low:
            self.rtt_low = rtt
        if rtt > self.rtt_high:
            self.rtt_high = rtt
        if self._rounds:
            entry = self._stats.get(index)
            if entry is None:
                entry = self._stats[index] = [0, 0, 0, None, []]
            if not entry[0]:
                self.alive += 1
            entry[0] += 1
            entry[4].append(rtt)
            if entry[0] >= self.count:
                self._report(index, entry)
        else:
            self.alive += 1
            self.decided += 1
            if self.on_host is not None:
                host = HostResult(key_text(key), True, number + 1, 1, 0, 0, (rtt,), None)
                self._deliver(host)
        if self.decided >= self.covered and not self._windows_pending_sends():
            self._finish(True)

    def _windows_pending_sends(self) -> bool:
        return self._step < self._positions or self._pass + 1 < self._passes

    def _error(self, index: int, number: int, text: str) -> None:
        """An ICMP error (or a failed send) about probe *number* to target *index*."""
        if self._finished:
            return
        self.errors += 1
        if self._rounds:
            entry = self._stats.get(index)
            if entry is None:
                entry = self._stats[index] = [0, 0, 0, None, []]
            entry[2] += 1
            entry[3] = text
            return
        if number != self._passes - 1:
            return  # the next pass tries again
        bits = self._bits
        if bits[index >> 3] >> (index & 7) & 1:
            return
        bits[index >> 3] |= 1 << (index & 7)
        self.unreachable += 1
        self.decided += 1
        if self.on_host is not None:
            host = key_text(self.targets.key(index))
            self._deliver(HostResult(host, False, number + 1, 0, 0, 1, (), text))

    def _report(self, index: int, entry: list[Any] | None) -> None:
        """The verdict on target *index*, from its statistics (None: it never answered)."""
        self.decided += 1
        if entry is None or not entry[0]:
            self.unreachable += 1
        if self.on_host is None:
            return
        host = key_text(self.targets.key(index))
        if entry is None:
            result = HostResult(host, False, self._passes, 0, 0, 0, (), None)
        else:
            received, duplicates, errors, text, rtts = entry
            result = HostResult(
                host, received > 0, self._passes, received, duplicates, errors, tuple(rtts), text
            )
        self._deliver(result)

    def _deliver(self, result: HostResult) -> None:
        if self.on_host is None or self._finished:
            return
        try:
            self.on_host(result)
        except Exception:
            # A consumer that fails ends the sweep: done errbacks with it.
            self._finish(False, Failure())

    # -- the end ---------------------------------------------------------

    def stop(self) -> None:
        """
        Stop now (idempotent): targets whose window is still open are
        reported as they stand (alive if a reply came), and :attr:`done`
        fires, marked incomplete unless every target was decided.
        """
        if self._finished:
            return
        reported: set[int] = set()
        bits = self._bits
        for window in list(self._windows):
            for index in self._replay(window):
                if index in reported:
                    continue
                reported.add(index)
                if self._rounds:
                    entry = self._stats.get(index)
                    if entry is not None and entry[0] >= self.count:
                        continue
                    self._report(index, entry)
                elif not bits[index >> 3] >> (index & 7) & 1:
                    bits[index >> 3] |= 1 << (index & 7)
                    self._report(index, None)
                if self._finished:
                    return
        complete = not self._windows_pending_sends() and self.decided >= self.covered
        self._finish(complete)

    def _finish(self, complete: bool, failure: Failure | None = None) -> None:
        if self._finished:
            return
        resume = self.resume_step if not complete else self._positions
        self._finished = True
        self._resume = resume
        for call in (self._call, self._timer):
            if call is not None and call.active():
                call.cancel()
        self._call = self._timer = None
        self._windows.clear()
        for sock in self._socks.values():
            if self in sock.sweeps:
                sock.sweeps.remove(self)
        if failure is not None:
            self.done.errback(failure)
        else:
            self.done.callback(self.summary(complete))

    def summary(self, complete: bool = True) -> SweepSummary:
        """The totals as they stand."""
        return SweepSummary(
            targets=self.covered if complete else max(self.covered, self.expected),
            alive=self.alive,
            unreachable=self.unreachable,
            transmitted=self.transmitted,
            received=self.received,
            duplicates=self.duplicates,
            damaged=self.damaged,
            errors=self.errors,
            late=self.late,
            elapsed=self.clock() - self._started,
            complete=complete,
            resume=self._resume if self._finished else self.resume_step,
            rtt_min=self.rtt_low if self.received else 0.0,
            rtt_max=self.rtt_high,
            rtt_total=self.rtt_total,
        )
