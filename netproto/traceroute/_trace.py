"""
:class:`Trace`: probes sent with increasing TTL (IPv6 hop limit), a window of
them in flight at once, each hop reported in order as soon as all its probes
are answered or timed out, the trace ending at the first hop whose answer is
final (the destination, or a router reporting it unreachable).

How probes are sent and answers read is a prober's business
(:mod:`netproto.traceroute._udp`, :mod:`netproto.traceroute._icmp`): it
calls :meth:`Trace.on_answer` for every answer it credits to a probe.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from netproto._results import Results
from netproto.traceroute._codec import COOKIE_SIZE, interpret, probe_payload
from netproto.traceroute._hops import Hop, Reply, TraceSummary

__all__ = ["Prober", "Trace", "TraceError", "TracePermissionError", "TraceProbe"]

_PENDING: Any = object()
"""A probe not sent yet, or sent and waiting."""
_RETRY = 0.001
"""Seconds before sending again when the kernel has no room for a probe."""


class TraceError(Exception):
    """The trace cannot go on (probes cannot be sent); the message says why, in one line."""


class TracePermissionError(TraceError):
    """No socket may be opened to send probes or read answers; the message says what to do."""


class TraceProbe:
    """One probe: its TTL and place in its hop, its payload, when it left."""

    __slots__ = (
        "cookie",
        "deadline",
        "done",
        "index",
        "number",
        "payload",
        "sent",
        "sent_wall",
        "timer",
        "ttl",
    )

    def __init__(self, ttl: int, index: int, number: int, payload: bytes, cookie: bytes) -> None:
        self.ttl = ttl
        self.index = index
        """Its place among its hop's probes, from 0."""
        self.number = number
        """``(ttl - 1) * probes + index``: unique in the trace, the offset of a
        classic UDP probe's destination port."""
        self.payload = payload
        self.cookie = cookie
        """The random bytes the payload starts with (all of it when shorter)."""
        self.sent = 0.0
        """Monotonic send time (set by the prober, right before sending)."""
        self.sent_wall = 0.0
        """Wall-clock send time, for probers that read kernel receive timestamps."""
        self.deadline = 0.0
        """When the trace stops waiting for it (monotonic seconds)."""
        self.timer: Any = None
        self.done = False

    def __repr__(self) -> str:
        return f"<TraceProbe ttl={self.ttl} #{self.index} number={self.number}>"


class Prober(Protocol):
    """What sends probes and reads answers for a :class:`Trace`."""

    version: int
    mode: str
    method: str
    one_hop_at_a_time: bool
    """True when answers can only be told apart within one hop (a constant
    flow): the trace then keeps one TTL in flight at a time."""

    def start(self, trace: Trace) -> None:
        """Start reading; credit answers through ``trace.on_answer``."""

    def send(self, probe: TraceProbe) -> bool:
        """
        Send *probe* with its TTL, setting ``probe.sent``; False when the
        kernel has no room now (try again later).

        :raises OSError: the probe cannot be sent.
        """

    def forget(self, probe: TraceProbe) -> None:
        """*probe* is no longer waited for (answered, timed out, abandoned)."""

    def ignored(self) -> int:
        """Packets read that answered no probe of ours."""

    def drain(self) -> None:
        """Read the answers waiting now (before a probe is given up)."""

    def close(self) -> None:
        """Stop reading and close the sockets."""


class Trace:
    """
    A running trace to *target* through *prober*: *probes* per hop, TTLs
    *first_hop* to *max_hops*, at most *simultaneous* in flight, *size*
    payload bytes each (a random cookie first).

    A probe is waited for *wait* seconds at most, less once other answers
    show what is reasonable, as traceroute(8)'s ``-w MAX,HERE,NEAR`` does:
    *here* times the round trip of the first answer from the same hop, else
    *near* times that of the first answer from a later hop (0 turns a rule
    off).

    Each hop arrives, in TTL order, through *on_hop*, through ``async for hop
    in trace``, or both; :attr:`done` fires with the :class:`TraceSummary`
    (or fails with :class:`TraceError` when probes cannot be sent, or with
    what *on_hop* raised).
    """

    def __init__(
        self,
        reactor: Any,
        prober: Prober,
        target: str,
        *,
        probes: int = 3,
        first_hop: int = 1,
        max_hops: int = 30,
        wait: float = 5.0,
        here: float = 3.0,
        near: float = 10.0,
        simultaneous: int = 16,
        size: int = 32,
        on_hop: Callable[[Hop], object] | None = None,
        clock: Callable[[], float],
    ) -> None:
        if not 1 <= first_hop <= max_hops <= 255:
            raise ValueError("hops must satisfy 1 <= first_hop <= max_hops <= 255")
        if probes < 1 or simultaneous < 1:
            raise ValueError("probes and simultaneous must be at least 1")
        self.reactor = reactor
        self.prober = prober
        self.target = target
        self.probes = probes
        self.first_hop = first_hop
        self.max_hops = max_hops
        self.wait = wait
        self.here = here
        self.near = near
        self.simultaneous = simultaneous
        self.size = size
        self.on_hop = on_hop
        self.clock = clock
        self.done: Deferred[TraceSummary] = Deferred()
        self.hops: list[Hop] = []
        self._end = max_hops
        self._next = (first_hop, 0)
        self._slots: dict[int, list[Any]] = {}
        self._waiting: dict[int, TraceProbe] = {}
        self._cookies: set[bytes] = set()
        self._late = 0
        self._retry: Any = None
        self._filling = False
        self._closing: Any = None
        self._final: TraceSummary | None = None
        self._finished = False
        self._results: Results[Hop] = Results(on_hop)
        self._started = clock()
        prober.start(self)
        self._fill()

    # -- sending ---------------------------------------------------------

    def _cookie(self) -> bytes:
        """A random cookie that no waiting probe carries."""
        size = min(self.size, COOKIE_SIZE)
        while True:
            cookie = os.urandom(size)
            if size == 0 or cookie not in self._cookies:
                return cookie

    def _fill(self) -> None:
        """
        Send probes until the window is full or every hop up to the end is
        sent. A prober may read answers while it sends (and so call back
        into the trace): each probe is registered before it is sent, and a
        call made meanwhile leaves the sending to the loop already running.
        """
        if self._filling:
            return
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        self._filling = True
        try:
            self._send_probes()
        finally:
            self._filling = False

    def _send_probes(self) -> None:
        while not self._finished and len(self._waiting) < self.simultaneous:
            ttl, index = self._next
            if ttl > self._end:
                return
            if self.prober.one_hop_at_a_time and any(p.ttl != ttl for p in self._waiting.values()):
                return
            cookie = self._cookie()
            number = (ttl - 1) * self.probes + index
            probe = TraceProbe(ttl, index, number, probe_payload(self.size, cookie), cookie)
            self._slots.setdefault(ttl, [_PENDING] * self.probes)
            self._waiting[number] = probe
            self._cookies.add(cookie)
            self._next = (ttl, index + 1) if index + 1 < self.probes else (ttl + 1, 0)
            probe.timer = self.reactor.callLater(self.wait, self._expire, probe)
            try:
                sent = self.prober.send(probe)
                probe.deadline = probe.sent + self.wait
            except OSError as e:
                self._fail(
                    Failure(TraceError(f"cannot send probes to {self.target}: {e.strerror or e}"))
                )
                return
            if not sent:
                # No room in the kernel: take the probe back, try again soon.
                probe.timer.cancel()
                del self._waiting[number]
                self._cookies.discard(cookie)
                self._next = (ttl, index)
                self._retry = self.reactor.callLater(_RETRY, self._fill)
                return

    # -- what the prober tells us ------------------------------------------

    def waiting(self) -> list[TraceProbe]:
        """The probes in flight, oldest first."""
        return sorted(self._waiting.values(), key=lambda p: p.number)

    def probe(self, number: int) -> TraceProbe | None:
        """The probe in flight with this *number*, if any."""
        return self._waiting.get(number)

    def on_answer(
        self, probe: TraceProbe, address: str, kind_type: int, code: int, info: int, now: float
    ) -> None:
        """Credit an answer (from *address*, read at monotonic *now*) to *probe*."""
        if self._finished or probe.done:
            self._late += 1
            return
        final, mark = interpret(self.prober.version, kind_type, code, info)
        self._resolve(probe, Reply(address, now - probe.sent, kind_type, code, final, mark))
        if final and probe.ttl < self._end:
            self._end = probe.ttl
            for other in list(self._waiting.values()):
                if other.ttl > self._end:
                    self._resolve(other, None)
        self._shorten()
        self._advance()
        self._fill()

    def _shorten(self) -> None:
        """
        Bring the deadlines of the probes in flight forward, as the answers so
        far allow (*here*, *near*); never later than *wait* after sending.
        """
        if not self._waiting or not (self.here or self.near):
            return
        # The round trip of each hop's first answer, hops in order.
        first: list[tuple[int, float]] = []
        for ttl in range(min(p.ttl for p in self._waiting.values()), self._next[0] + 1):
            reply = next((r for r in self._slots.get(ttl, ()) if isinstance(r, Reply)), None)
            if reply is not None:
                first.append((ttl, reply.rtt))
        if not first:
            return
        now = self.clock()
        for probe in list(self._waiting.values()):
            timeout = self.wait
            here = next((rtt for ttl, rtt in first if ttl == probe.ttl), None)
            later = next((rtt for ttl, rtt in first if ttl > probe.ttl), None)
            if self.here and here is not None:
                timeout = min(timeout, self.here * here)
            elif self.near and later is not None:
                timeout = min(timeout, self.near * later)
            deadline = probe.sent + timeout
            if deadline < probe.deadline and probe.timer is not None:
                probe.deadline = deadline
                probe.timer.cancel()
                probe.timer = self.reactor.callLater(max(0.0, deadline - now), self._expire, probe)

    def _expire(self, probe: TraceProbe) -> None:
        probe.timer = None
        if probe.done or self._finished:
            return
        # An answer may be waiting, read yet: it counts (its time is the kernel's).
        self.prober.drain()
        if probe.done or self._finished:
            return
        self._resolve(probe, None)
        self._advance()
        self._fill()

    def _resolve(self, probe: TraceProbe, reply: Reply | None) -> None:
        probe.done = True
        if probe.timer is not None and probe.timer.active():
            probe.timer.cancel()
        probe.timer = None
        self._waiting.pop(probe.number, None)
        self._cookies.discard(probe.cookie)
        self.prober.forget(probe)
        slots = self._slots.get(probe.ttl)
        if slots is not None:
            slots[probe.index] = reply

    def _advance(self) -> None:
        """Report every complete hop in order; finish after the last."""
        while len(self.hops) < self._end - self.first_hop + 1:
            ttl = self.first_hop + len(self.hops)
            slots = self._slots.get(ttl)
            if slots is None or any(s is _PENDING for s in slots):
                return
            hop = Hop(ttl, tuple(slots))
            self.hops.append(hop)
            self._emit(hop)
            if self._finished:
                return
        self._finish()

    # -- results ---------------------------------------------------------

    def _emit(self, hop: Hop) -> None:
        failure = self._results.emit(hop)
        if failure is not None:
            self._fail(failure)

    def __aiter__(self) -> AsyncIterator[Hop]:
        return self._results.__aiter__()

    def summary(self) -> TraceSummary:
        """The path as found so far."""
        return TraceSummary(
            target=self.target,
            method=self.prober.method,
            mode=self.prober.mode,
            hops=tuple(self.hops),
            reached=any(hop.reached for hop in self.hops),
            first_hop=self.first_hop,
            max_hops=self.max_hops,
            probes=self.probes,
            elapsed=self.clock() - self._started,
            ignored=self.prober.ignored() + self._late,
            stopped=len(self.hops) < self._end - self.first_hop + 1,
        )

    def _halt(self) -> TraceSummary:
        """Stop sending and waiting; the summary as it stands."""
        summary = self.summary()
        self._finished = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        for probe in list(self._waiting.values()):
            self._resolve(probe, None)
        self._results.close()
        return summary

    def _finish(self) -> None:
        """
        The last hop is in. The sockets are closed on the next turn of the
        reactor (this may run inside a prober's read loop), then :attr:`done`
        fires.
        """
        self._final = self._halt()
        self._closing = self.reactor.callLater(0, self._complete, self._final)

    def _complete(self, summary: TraceSummary) -> None:
        self._closing = None
        self.prober.close()
        self.done.callback(summary)

    def _fail(self, failure: Failure) -> None:
        if self._finished:
            return
        self._halt()
        self.prober.close()
        self.done.errback(failure)

    def stop(self) -> None:
        """
        Stop now (idempotent): no more probes; hops not complete are not
        reported; :attr:`done` fires with the summary so far.
        """
        if self._closing is not None:
            self._closing.cancel()
            assert self._final is not None
            self._complete(self._final)
            return
        if self._finished:
            return
        self._complete(self._halt())
