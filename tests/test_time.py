"""RFC 868 time: the 32-bit value and its eras, the servers and the clients."""

from __future__ import annotations

import calendar
import struct

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto.time import (
    EPOCH_OFFSET,
    ProtocolError,
    TimeDatagramProtocol,
    TimeFactory,
    from_rfc868,
    time_tcp,
    time_udp,
    to_rfc868,
)
from tests._fakes import FakeUDPPort
from tests._servers import IPV6_SKIP, reactor

WRAP = calendar.timegm((2036, 2, 7, 6, 28, 16))
"""2036-02-07 06:28:16 UTC: where RFC 868 time wraps to 0."""


class CodecTests(SynchronousTestCase):
    """The value, against dates worked out with the calendar module."""

    def test_epochs(self) -> None:
        """1970 is 2208988800 since 1900; the wrap is 2**32 seconds after 1900."""
        self.assertEqual(EPOCH_OFFSET, -calendar.timegm((1900, 1, 1, 0, 0, 0)))
        self.assertEqual(to_rfc868(0), struct.pack("!I", 2208988800))
        self.assertEqual(WRAP + EPOCH_OFFSET, 2**32)
        self.assertEqual(to_rfc868(WRAP), b"\0\0\0\0")
        self.assertEqual(to_rfc868(WRAP - 1), b"\xff\xff\xff\xff")
        self.assertEqual(to_rfc868(1.9), to_rfc868(1))

    def test_eras(self) -> None:
        """Just after the wrap, read near the wrap, is era 1; just before is era 0."""
        self.assertEqual(from_rfc868(to_rfc868(WRAP + 5), WRAP - 100), (WRAP + 5, 1))
        self.assertEqual(from_rfc868(to_rfc868(WRAP - 5), WRAP + 100), (WRAP - 5, 0))
        with self.assertRaises(ValueError):
            from_rfc868(b"abc", 0)

    @given(st.integers(0, 3 * 2**32 - EPOCH_OFFSET), st.integers(-(2**31) + 1, 2**31 - 1))
    def test_round_trip_near(self, seconds: int, skew: int) -> None:
        """Any time from 1970 to era 2 reads back exactly from a clock within 68 years of it."""
        got, era = from_rfc868(to_rfc868(seconds), seconds + skew)
        self.assertEqual(got, seconds)
        self.assertEqual(era, (seconds + EPOCH_OFFSET) // 2**32)


class ServerTests(SynchronousTestCase):
    """The servers on fakes: the injected clock, not the system's."""

    def test_tcp(self) -> None:
        """Four bytes of the clock's time, then closed."""
        clock = Clock()
        clock.advance(WRAP + 7)
        factory = TimeFactory(clock)
        peer = IPv4Address("TCP", "127.0.0.1", 4000)
        protocol = factory.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer)
        protocol.makeConnection(transport)
        self.assertEqual(transport.value(), struct.pack("!I", 7))
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost()
        self.assertEqual(factory.limiter.total, 0)

    def test_udp(self) -> None:
        """Any datagram gets four bytes; a privileged source port gets nothing."""
        clock = Clock()
        clock.advance(1000)
        protocol = TimeDatagramProtocol(clock)
        port = FakeUDPPort(protocol, 37)
        protocol.datagramReceived(b"anything", ("127.0.0.1", 5000))
        protocol.datagramReceived(b"", ("127.0.0.1", 37))
        self.assertEqual(port.fake.sent, [(to_rfc868(1000), ("127.0.0.1", 5000))])


class ClientTests(TestCase):
    """The clients against our servers on loopback."""

    timeout = 20

    async def test_tcp_and_udp_ipv4(self) -> None:
        """Both clients read the server's time in era 0 with an offset within a second."""
        tcp = reactor.listenTCP(0, TimeFactory(reactor), interface="127.0.0.1")
        self.addCleanup(tcp.stopListening)
        udp = reactor.listenUDP(0, TimeDatagramProtocol(reactor), interface="127.0.0.1")
        self.addCleanup(udp.stopListening)
        for answer in (
            await time_tcp(reactor, "127.0.0.1", tcp.getHost().port),
            await time_udp(reactor, "127.0.0.1", udp.getHost().port),
        ):
            self.assertEqual(answer.era, 0)
            self.assertLessEqual(abs(answer.offset), 1.0)
            self.assertLessEqual(abs(answer.seconds - reactor.seconds()), 2)

    async def test_ipv6_and_bad_answer(self) -> None:
        """Over ::1; a server answering 5 bytes is a ProtocolError."""
        from twisted.internet.protocol import Factory, Protocol

        tcp = reactor.listenTCP(0, TimeFactory(reactor), interface="::1")
        self.addCleanup(tcp.stopListening)
        answer = await time_tcp(reactor, "::1", tcp.getHost().port)
        self.assertLessEqual(abs(answer.offset), 1.0)

        class Five(Protocol):
            def connectionMade(self) -> None:
                self.transport.write(b"12345")  # type: ignore[union-attr]
                self.transport.loseConnection()  # type: ignore[union-attr]

        bad = reactor.listenTCP(0, Factory.forProtocol(Five), interface="127.0.0.1")
        self.addCleanup(bad.stopListening)
        with self.assertRaises(ProtocolError):
            await time_tcp(reactor, "127.0.0.1", bad.getHost().port)

    test_ipv6_and_bad_answer.skip = IPV6_SKIP  # type: ignore[attr-defined]
