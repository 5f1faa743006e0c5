"""
:class:`netproto.traceroute.Trace`, the engine, driven by a fake prober and a
fake clock: the order hops are reported in, timeouts, the end of a trace, the
window of probes in flight, failures and stopping. No sockets.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from netproto.traceroute import Hop, Reply, Trace, TraceError, TraceSummary, trace
from netproto.traceroute._trace import TraceProbe
from netproto.util import AddressError

TIME_EXCEEDED = (11, 0)
PORT_UNREACHABLE = (3, 3)
HOST_UNREACHABLE = (3, 1)


class FakeProber:
    """Records what the trace sends; answers only when the test says so."""

    version = 4
    mode = "raw"
    method = "udp"

    def __init__(self, clock: Clock, *, one_hop_at_a_time: bool = False) -> None:
        self.clock = clock
        self.one_hop_at_a_time = one_hop_at_a_time
        self.sent: list[TraceProbe] = []
        self.busy = 0
        self.error: OSError | None = None
        self.closed = False
        self.trace: Trace | None = None
        self.forgotten: list[TraceProbe] = []
        self.drained = 0

    def start(self, trace: Trace) -> None:
        self.trace = trace

    def send(self, probe: TraceProbe) -> bool:
        if self.error is not None:
            raise self.error
        if self.busy:
            self.busy -= 1
            return False
        probe.sent = self.clock.seconds()
        self.sent.append(probe)
        return True

    def forget(self, probe: TraceProbe) -> None:
        self.forgotten.append(probe)

    def ignored(self) -> int:
        return 0

    def drain(self) -> None:
        self.drained += 1

    def close(self) -> None:
        self.closed = True

    def answer(self, probe: TraceProbe, address: str, kind: tuple[int, int], after: float) -> None:
        """Answer *probe* from *address*, *after* seconds of the clock."""
        self.clock.advance(after)
        assert self.trace is not None
        self.trace.on_answer(probe, address, kind[0], kind[1], 0, self.clock.seconds())

    def of(self, ttl: int) -> list[TraceProbe]:
        return [p for p in self.sent if p.ttl == ttl]


class Harness:
    """A trace to 10.0.0.9 over a :class:`FakeProber`, its hops collected."""

    def __init__(self, **options: Any) -> None:
        self.clock = Clock()
        self.prober = FakeProber(self.clock, one_hop_at_a_time=options.pop("flow", False))
        self.hops: list[Hop] = []
        options.setdefault("on_hop", self.hops.append)
        options.setdefault("here", 0)
        options.setdefault("near", 0)
        self.trace = Trace(self.clock, self.prober, "10.0.0.9", clock=self.clock.seconds, **options)
        self.outcome: list[Any] = []
        self.trace.done.addBoth(self.outcome.append)

    def route(self, ttl: int, kind: tuple[int, int] = TIME_EXCEEDED) -> None:
        """Every probe of hop *ttl* answered by router 10.0.<ttl>.1 (or the target)."""
        for probe in self.prober.of(ttl):
            address = "10.0.0.9" if kind != TIME_EXCEEDED else f"10.0.{ttl}.1"
            self.prober.answer(probe, address, kind, 0.001)

    def finish(self) -> TraceSummary:
        self.clock.advance(0)
        summary = self.outcome[0]
        assert isinstance(summary, TraceSummary), summary
        return summary


class TraceTests(SynchronousTestCase):
    """Hops in order, stars, the end of the path."""

    def test_hops_in_order(self) -> None:
        """Hop 2 answered first is reported after hop 1; the target ends the trace."""
        h = Harness(max_hops=10)
        h.route(2)
        self.assertEqual(h.hops, [])
        h.route(1)
        self.assertEqual([hop.ttl for hop in h.hops], [1, 2])
        h.route(3, PORT_UNREACHABLE)
        summary = h.finish()
        self.assertEqual([hop.ttl for hop in summary.hops], [1, 2, 3])
        self.assertEqual(h.hops[0].responders[0].address, "10.0.1.1")
        self.assertEqual(len(h.hops[0].responders[0].rtts), 3)
        self.assertTrue(summary.reached)
        self.assertFalse(summary.stopped)
        self.assertTrue(h.prober.closed)

    def test_round_trip_times(self) -> None:
        """A reply's RTT is the time from its probe's send to the answer."""
        h = Harness(max_hops=1, probes=1)
        h.prober.answer(h.prober.sent[0], "10.0.0.9", PORT_UNREACHABLE, 0.25)
        self.assertEqual(h.finish().hops[0].replies[0].rtt, 0.25)  # type: ignore[union-attr]

    def test_silence_is_a_star(self) -> None:
        """A probe unanswered within the wait is None (``*``); the hop is reported then."""
        h = Harness(max_hops=5, wait=2.0)
        first, second, third = h.prober.of(1)
        h.prober.answer(first, "10.0.1.1", TIME_EXCEEDED, 0.001)
        h.prober.answer(third, "10.0.1.1", TIME_EXCEEDED, 0.001)
        self.assertEqual(h.hops, [])
        h.clock.advance(2.0)
        self.assertEqual([r is None for r in h.hops[0].replies], [False, True, False])
        self.assertTrue(second.done)

    def test_unreachable_mark_ends_the_trace(self) -> None:
        """!H at hop 2 ends the trace there: hops beyond are abandoned, never reported."""
        h = Harness(max_hops=30)
        later = h.prober.of(4)
        h.route(2, HOST_UNREACHABLE)
        h.route(1)
        summary = h.finish()
        self.assertEqual([hop.ttl for hop in summary.hops], [1, 2])
        self.assertEqual(summary.hops[-1].marks, ("!H",))
        self.assertFalse(summary.reached)
        self.assertTrue(all(p.done for p in later))
        self.assertEqual(max(p.ttl for p in h.prober.sent), 6)

    def test_late_answers_ignored(self) -> None:
        """An answer after its timeout, or to an abandoned probe, is counted, not shown."""
        h = Harness(max_hops=3, probes=1, wait=1.0, simultaneous=1)
        probe = h.prober.sent[0]
        h.clock.advance(1.0)
        h.prober.answer(probe, "10.0.1.1", TIME_EXCEEDED, 0.1)
        h.route(2)
        h.route(3, PORT_UNREACHABLE)
        summary = h.finish()
        self.assertEqual(summary.hops[0].replies, (None,))
        self.assertEqual(summary.ignored, 1)

    def test_first_hop(self) -> None:
        """-f: hops start at FIRST_TTL; probe numbers still count from TTL 1."""
        h = Harness(first_hop=3, max_hops=4, probes=2)
        self.assertEqual(
            [(p.ttl, p.index, p.number) for p in h.prober.of(3)], [(3, 0, 4), (3, 1, 5)]
        )
        h.route(3)
        h.route(4)
        summary = h.finish()
        self.assertEqual([hop.ttl for hop in summary.hops], [3, 4])
        self.assertFalse(summary.reached)

    def test_max_hops(self) -> None:
        """Without an answer from the destination, the trace stops after MAX_TTL."""
        h = Harness(max_hops=2)
        h.route(1)
        h.route(2)
        self.assertEqual(len(h.prober.sent), 6)
        self.assertFalse(h.finish().reached)


class WindowTests(SynchronousTestCase):
    """How many probes are in flight, and when the next ones go."""

    def test_simultaneous(self) -> None:
        """At most -N probes in flight; each answer lets the next one go."""
        h = Harness(max_hops=10, simultaneous=4)
        self.assertEqual(
            [(p.ttl, p.index) for p in h.prober.sent], [(1, 0), (1, 1), (1, 2), (2, 0)]
        )
        h.prober.answer(h.prober.sent[0], "10.0.1.1", TIME_EXCEEDED, 0.001)
        self.assertEqual((h.prober.sent[-1].ttl, h.prober.sent[-1].index), (2, 1))

    def test_one_hop_at_a_time(self) -> None:
        """A constant flow keeps one TTL in flight: the next hop goes when this one is done."""
        h = Harness(max_hops=10, flow=True)
        self.assertEqual({p.ttl for p in h.prober.sent}, {1})
        h.route(1)
        self.assertEqual({p.ttl for p in h.prober.sent}, {1, 2})
        self.assertEqual(len(h.prober.sent), 6)

    def test_kernel_busy(self) -> None:
        """A send the kernel has no room for is tried again a millisecond later."""
        clock = Clock()
        prober = FakeProber(clock)
        prober.busy = 2
        trace = Trace(clock, prober, "10.0.0.9", max_hops=1, probes=1, clock=clock.seconds)
        self.assertEqual(prober.sent, [])
        clock.advance(0.001)
        clock.advance(0.001)
        self.assertEqual([(p.ttl, p.index) for p in prober.sent], [(1, 0)])
        trace.stop()

    def test_cookies(self) -> None:
        """Every probe in flight has its own random cookie at the start of its payload."""
        h = Harness(max_hops=10, size=40)
        cookies = [p.cookie for p in h.prober.sent]
        self.assertEqual(len(set(cookies)), len(cookies))
        for probe in h.prober.sent:
            self.assertEqual(len(probe.payload), 40)
            self.assertTrue(probe.payload.startswith(probe.cookie))
        h.trace.stop()


class WaitTests(SynchronousTestCase):
    """How long a probe is waited for: -w MAX,HERE,NEAR."""

    def test_here(self) -> None:
        """Once a hop has answered in R seconds, its other probes wait HERE * R at most."""
        h = Harness(max_hops=5, wait=5.0, here=3.0, near=0)
        first = h.prober.of(1)[0]
        h.prober.answer(first, "10.0.1.1", TIME_EXCEEDED, 0.01)
        h.clock.advance(0.015)
        self.assertEqual(h.hops, [])
        h.clock.advance(0.01)
        self.assertEqual([r is None for r in h.hops[0].replies], [False, True, True])
        self.assertGreater(h.prober.drained, 0)

    def test_near(self) -> None:
        """A silent hop, once a later hop answered in R seconds, waits NEAR * R at most."""
        h = Harness(max_hops=5, wait=5.0, here=0, near=10.0)
        h.prober.answer(h.prober.of(2)[0], "10.0.2.1", TIME_EXCEEDED, 0.05)
        for probe in h.prober.of(2)[1:]:
            h.prober.answer(probe, "10.0.2.1", TIME_EXCEEDED, 0.0)
        h.clock.advance(0.4)
        self.assertEqual(h.hops, [])
        h.clock.advance(0.11)
        self.assertEqual([hop.ttl for hop in h.hops], [1, 2])
        self.assertEqual(h.hops[0].replies, (None, None, None))

    def test_answer_read_before_giving_up(self) -> None:
        """An answer waiting in the socket when the deadline comes is read and counts."""
        h = Harness(max_hops=1, probes=1, wait=1.0)
        probe = h.prober.sent[0]

        def drain() -> None:
            h.prober.trace.on_answer(probe, "10.0.0.9", 3, 3, 0, 0.5)  # type: ignore[union-attr]

        h.prober.drain = drain  # type: ignore[method-assign]
        h.clock.advance(1.0)
        self.assertEqual(h.finish().hops[0].replies[0].rtt, 0.5)  # type: ignore[union-attr]


class EndingTests(SynchronousTestCase):
    """Failures, stopping, and the ways hops are delivered."""

    def test_send_error_fails(self) -> None:
        """A probe that cannot be sent fails the trace with TraceError, one line, sockets closed."""
        clock = Clock()
        prober = FakeProber(clock)
        prober.error = OSError(errno.ENETUNREACH, "Network is unreachable")
        trace = Trace(clock, prober, "10.0.0.9", clock=clock.seconds)
        failures: list[Failure] = []
        trace.done.addErrback(failures.append)
        self.assertEqual(
            str(failures[0].value), "cannot send probes to 10.0.0.9: Network is unreachable"
        )
        self.assertIsInstance(failures[0].value, TraceError)
        self.assertTrue(prober.closed)

    def test_failing_consumer(self) -> None:
        """A callback that raises ends the trace: done fails with its exception."""

        def explode(hop: Hop) -> None:
            raise ZeroDivisionError("consumer")

        h = Harness(max_hops=3, on_hop=explode)
        h.route(1)
        self.assertIsInstance(h.outcome[0], Failure)
        h.outcome[0].trap(ZeroDivisionError)
        self.assertTrue(h.prober.closed)

    def test_stop(self) -> None:
        """stop() fires done with the hops so far, marked stopped; later answers change nothing."""
        h = Harness(max_hops=10)
        h.route(1)
        pending = h.prober.of(2)[0]
        h.trace.stop()
        h.trace.stop()
        summary = h.outcome[0]
        self.assertTrue(summary.stopped)
        self.assertEqual([hop.ttl for hop in summary.hops], [1])
        self.assertTrue(h.prober.closed)
        h.trace.on_answer(pending, "10.0.2.1", 11, 0, 0, 1.0)
        self.assertEqual(len(h.outcome), 1)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_stop_while_closing(self) -> None:
        """stop() after the last hop but before the next turn completes at once, not stopped."""
        h = Harness(max_hops=1)
        h.route(1, PORT_UNREACHABLE)
        self.assertEqual(h.outcome, [])
        h.trace.stop()
        self.assertFalse(h.outcome[0].stopped)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_async_iteration(self) -> None:
        """``async for hop in trace`` sees every hop, in order, then ends."""
        h = Harness(max_hops=5, on_hop=None)
        seen: list[int] = []

        async def consume() -> None:
            async for hop in h.trace:
                seen.append(hop.ttl)

        done = Deferred.fromCoroutine(consume())
        h.route(1)
        h.route(2, PORT_UNREACHABLE)
        h.finish()
        self.assertEqual(seen, [1, 2])
        self.assertIsNone(self.successResultOf(done))

    def test_hop_properties(self) -> None:
        """Responders group RTTs by address in order; marks are distinct; reached needs no mark."""
        hop = Hop(
            5,
            (
                Reply("10.0.0.1", 0.1, 3, 1, True, "!H"),
                None,
                Reply("10.0.0.2", 0.2, 3, 3, True),
                Reply("10.0.0.1", 0.3, 3, 1, True, "!H"),
            ),
        )
        self.assertEqual(
            [(r.address, r.rtts) for r in hop.responders],
            [("10.0.0.1", (0.1, 0.3)), ("10.0.0.2", (0.2,))],
        )
        self.assertEqual(hop.marks, ("!H",))
        self.assertTrue(hop.final and hop.reached)
        self.assertFalse(Hop(1, (None,)).final)


class OptionTests(SynchronousTestCase):
    """What :func:`trace` refuses before opening any socket."""

    def test_refusals(self) -> None:
        """Bad targets and options out of range: AddressError or ValueError, naming them."""
        clock = Clock()
        with self.assertRaises(AddressError):
            trace(clock, "www.example.test")
        for options, word in [
            ({"method": "tcp"}, "method"),
            ({"mode": "fast"}, "mode"),
            ({"probes": 0}, "probes"),
            ({"probes": 11}, "probes"),
            ({"wait": 0}, "wait"),
            ({"wait": float("nan")}, "wait"),
            ({"simultaneous": 0}, "simultaneous"),
            ({"size": -1}, "size"),
            ({"port": 0}, "port"),
            ({"port": 65530}, "65535"),
        ]:
            with self.assertRaises(ValueError) as caught:
                trace(clock, "127.0.0.1", **options)
            self.assertIn(word, str(caught.exception), options)
        with self.assertRaises(AddressError):
            trace(clock, "127.0.0.1", source="::1")

    def test_hops_range(self) -> None:
        """first_hop above max_hops, or max_hops above 255, is refused (sockets closed)."""
        clock = Clock()
        for first, last in [(5, 4), (1, 256), (0, 3)]:
            with self.assertRaises(ValueError):
                trace(clock, "127.0.0.1", first_hop=first, max_hops=last, mode="dgram")


class ReaderTests(SynchronousTestCase):
    """The descriptor that reads a prober's socket for the reactor."""

    def test_bug_logged_not_fatal(self) -> None:
        """An exception while reading is logged under netproto.traceroute; reading goes on."""
        from twisted.logger import globalLogPublisher

        from netproto.traceroute._udp import _Reader

        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)

        def broken() -> None:
            raise ZeroDivisionError("a bug")

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            reader = _Reader(Clock(), sock, broken)
            reader.doRead()
            self.assertEqual(reader.fileno(), sock.fileno())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(
            [e["log_namespace"] for e in events if "log_failure" in e], ["netproto.traceroute"]
        )
