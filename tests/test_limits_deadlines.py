"""
Idle and write-stall deadlines fire within one sweep period of the configured
time, never early, however late the sweeps run: the clocks start when the
connection saw the event (its last read, its first blocked write), not when a
sweep noticed it. Driven on :class:`~twisted.internet.task.Clock`.
"""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from netproto.echo import EchoFactory, EchoProtocol
from netproto.limits import Limits


def _connect(clock: Clock, limits: Limits) -> tuple[EchoFactory, EchoProtocol, StringTransport]:
    factory = EchoFactory(clock, limits)
    factory.startFactory()
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    assert isinstance(protocol, EchoProtocol)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
    protocol.makeConnection(transport)
    return factory, protocol, transport


def _run_until_aborted(clock: Clock, transport: StringTransport, late: float, end: float) -> float:
    """Advance *clock* sweep by sweep, each sweep *late* seconds late; when the abort came."""
    step = 0
    while clock.seconds() < end:
        step += 1
        # The sweep due at a whole second runs *late* after it (every other one).
        clock.advance(max(0.0, step + (late if step % 2 else 0.0) - clock.seconds()))
        if transport.disconnecting:
            return clock.seconds()
    raise AssertionError(f"not aborted by {end}")


class StallDeadlineTests(SynchronousTestCase):
    """``--write-stall-timeout`` counts from the first blocked write."""

    def test_issue_case(self) -> None:
        """Blocked just after a sweep, the next sweep late: aborted by the sweep after 2 s."""
        clock = Clock()
        factory, protocol, transport = _connect(
            clock, Limits(write_stall_timeout=2, idle_timeout=0, sweep_interval=1)
        )
        clock.advance(1.05)  # the sweep at 1.0 ran; the peer stops reading now
        protocol.pauseProducing()
        clock.advance(0.9504)  # the sweep due at 2.0 runs at 2.0004
        clock.advance(0.9996)  # 3.0
        self.assertFalse(transport.disconnecting)
        clock.advance(1.0)  # 4.0: 2.95 s after the first blocked write, past 3.05
        self.assertTrue(transport.disconnecting)
        self.assertEqual(factory.counters.get("tcp_stall_aborted"), 1)

    @settings(max_examples=60, deadline=None)
    @given(
        blocked=st.floats(min_value=0.01, max_value=3.0),
        late=st.floats(min_value=0.0, max_value=0.2),
        timeout=st.integers(min_value=1, max_value=6),
    )
    def test_within_one_period(self, blocked: float, late: float, timeout: int) -> None:
        """For any block time and sweep lateness: deadline <= abort <= deadline + period + late."""
        clock = Clock()
        _, protocol, transport = _connect(
            clock, Limits(write_stall_timeout=timeout, idle_timeout=0, sweep_interval=1)
        )
        clock.advance(blocked)
        protocol.pauseProducing()
        aborted = _run_until_aborted(clock, transport, late, blocked + timeout + 5)
        self.assertGreaterEqual(aborted, blocked + timeout)
        self.assertLessEqual(aborted, blocked + timeout + 1 + late + 1e-9)


class IdleDeadlineTests(SynchronousTestCase):
    """``--idle-timeout`` counts from the last byte received."""

    @settings(max_examples=60, deadline=None)
    @given(
        last=st.floats(min_value=0.01, max_value=3.0),
        late=st.floats(min_value=0.0, max_value=0.2),
        timeout=st.integers(min_value=1, max_value=6),
    )
    def test_within_one_period(self, last: float, late: float, timeout: int) -> None:
        """Last byte at *last*: aborted no earlier than *last* + timeout, at most a period late."""
        assume(last < timeout)  # else idle since the connection was made, and rightly aborted
        clock = Clock()
        _, protocol, transport = _connect(
            clock, Limits(write_stall_timeout=0, idle_timeout=timeout, sweep_interval=1)
        )
        clock.advance(last)
        protocol.dataReceived(b"x")
        aborted = _run_until_aborted(clock, transport, late, last + timeout + 5)
        self.assertGreaterEqual(aborted, last + timeout)
        self.assertLessEqual(aborted, last + timeout + 1 + late + 1e-9)

    def test_drain_is_activity(self) -> None:
        """Output that drains (the transport resumes us) restarts the idle clock from then."""
        clock = Clock()
        _, protocol, transport = _connect(
            clock, Limits(write_stall_timeout=0, idle_timeout=3, sweep_interval=1)
        )
        protocol.pauseProducing()
        clock.advance(4.5)
        protocol.resumeProducing()
        aborted = _run_until_aborted(clock, transport, 0.0, 20)
        self.assertGreaterEqual(aborted, 7.5)
        self.assertLessEqual(aborted, 8.5)
