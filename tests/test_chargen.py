"""RFC 864 chargen: the pattern, the TCP stream with flow control, UDP replies, the clients."""

from __future__ import annotations

import socket
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto.chargen import (
    LINE_LENGTH,
    PERIOD,
    RING,
    ChargenDatagramProtocol,
    ChargenFactory,
    ChargenProtocol,
    ProtocolError,
    chargen_line,
    chargen_tcp,
    chargen_udp,
    check_stream,
)
from netproto.echo import EchoDatagramProtocol
from netproto.limits import DEFAULT_LIMITS, Limits
from tests._fakes import FakeUDPPort
from tests._servers import IPV6_SKIP, closed_by_peer, reactor, sleep, wait_until

PEER = IPv4Address("TCP", "127.0.0.1", 40000)
SOURCE = ("127.0.0.1", 40000)


def rfc864_stream(lines: int) -> bytes:
    """The stream as RFC 864 describes it, built character by character (the oracle):
    the ring of 95 printable characters, the first line the RFC's example line."""
    printable = [chr(c) for c in range(0x20, 0x7F)]  # space to tilde: 95 characters
    out = []
    for n in range(lines):
        out.append("".join(printable[(n + 1 + i) % 95] for i in range(72)) + "\r\n")
    return "".join(out).encode("ascii")


class PatternTests(SynchronousTestCase):
    """The ring, the lines and the period, against RFC 864's description."""

    def test_ring_is_95_printable(self) -> None:
        """The ring holds the 95 printable ASCII characters once each, space first."""
        self.assertEqual(len(RING), 95)
        self.assertEqual(RING, bytes(range(32, 127)))
        self.assertEqual(LINE_LENGTH, 72)

    def test_period_matches_rfc(self) -> None:
        """Two periods (190 lines) are the RFC's stream; line 95 is line 0 again."""
        example = (
            b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n"
            b"\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghi\r\n"
        )
        self.assertEqual(PERIOD[:148], example)  # RFC 864's first two example lines
        self.assertEqual(len(PERIOD), 95 * 74)
        self.assertEqual(PERIOD * 2, rfc864_stream(190))
        self.assertEqual(chargen_line(95), chargen_line(0))
        self.assertEqual(chargen_line(22), rfc864_stream(23)[22 * 74 :])

    @given(st.integers(0, 94 * 74 // 74), st.integers(0, 20000))
    def test_check_stream_accepts_any_slice(self, line: int, size: int) -> None:
        """Any piece of the stream starting at a line start is recognised."""
        whole = PERIOD * 5
        self.assertTrue(check_stream(whole[line * 74 : line * 74 + size]))

    @given(st.integers(0, 20000), st.integers(0, 255))
    def test_check_stream_refuses_damage(self, where: int, byte: int) -> None:
        """One changed byte anywhere is seen."""
        data = bytearray(PERIOD * 3)
        where %= len(data)
        if data[where] == byte:
            return
        data[where] = byte
        self.assertFalse(check_stream(bytes(data)))


def connect(factory: ChargenFactory) -> tuple[ChargenProtocol, StringTransport]:
    protocol = factory.buildProtocol(PEER)
    assert isinstance(protocol, ChargenProtocol)
    transport = StringTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    return protocol, transport


class ChargenProtocolTests(SynchronousTestCase):
    """The TCP protocol over a StringTransport (which never pauses by itself)."""

    def test_stream_and_pause(self) -> None:
        """The stream is the RFC's; paused, nothing more is written; resumed, it goes on."""
        clock = Clock()
        factory = ChargenFactory(clock)
        protocol, transport = connect(factory)
        first = transport.value()
        self.assertTrue(first)
        self.assertEqual(first[: 190 * 74], rfc864_stream(190))
        self.assertTrue(check_stream(first))
        protocol.pauseProducing()
        clock.advance(0)
        self.assertEqual(transport.value(), first)
        self.assertTrue(protocol.write_blocked())
        protocol.resumeProducing()
        more = transport.value()
        self.assertGreater(len(more), len(first))
        self.assertTrue(check_stream(more))

    def test_input_dropped_and_half_close_ignored(self) -> None:
        """Bytes from the peer are counted, not kept; its half-close does not stop the stream."""
        clock = Clock()
        factory = ChargenFactory(clock)
        protocol, transport = connect(factory)
        protocol.pauseProducing()
        protocol.dataReceived(b"x" * 1000)
        protocol.readConnectionLost()
        self.assertFalse(transport.disconnecting)
        protocol.connectionLost()
        self.assertEqual(factory.counters.get("tcp_bytes_received"), 1000)
        self.assertGreater(factory.counters.get("tcp_bytes_sent"), 0)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_pending_falls_while_read(self) -> None:
        """pending() falls whenever more was written (a reader is making progress)."""
        factory = ChargenFactory(Clock())
        protocol, transport = connect(factory)
        protocol.pauseProducing()
        before = protocol.pending()
        transport.clear()
        protocol.resumeProducing()
        protocol.pauseProducing()
        after = protocol.pending()
        assert before is not None and after is not None
        self.assertLess(after, before)
        protocol.connectionLost()


class ChargenDatagramTests(SynchronousTestCase):
    """UDP replies: never larger than the request by default; whole lines with rfc."""

    def test_reply_never_larger_than_request(self) -> None:
        """0, 1, 74, 600 bytes in: 0, 1, 74, 512 out, each from the next line."""
        protocol = ChargenDatagramProtocol(Clock())
        port = FakeUDPPort(protocol, 19)
        for size in (0, 1, 74, 600):
            protocol.datagramReceived(b"q" * size, SOURCE)
        sent = [data for data, _ in port.fake.sent]
        self.assertEqual([len(d) for d in sent], [0, 1, 74, 512])
        self.assertEqual(sent[2], chargen_line(2))
        self.assertEqual(sent[3], (PERIOD * 2)[3 * 74 : 3 * 74 + 512])
        self.assertTrue(all(check_stream(d) for d in sent))

    def test_rfc_mode(self) -> None:
        """With rfc, an empty datagram gets a whole line; lines rotate round the ring."""
        protocol = ChargenDatagramProtocol(Clock(), Limits(udp_rate=0), rfc=True)
        port = FakeUDPPort(protocol, 19)
        for _ in range(96):
            protocol.datagramReceived(b"", SOURCE)
        sent = [data for data, _ in port.fake.sent]
        self.assertEqual(sent[0], chargen_line(0))
        self.assertEqual(sent[94], chargen_line(94))
        self.assertEqual(sent[95], chargen_line(0))

    def test_source_rules_apply(self) -> None:
        """A privileged source port, and a served port, get nothing (counted)."""
        protocol = ChargenDatagramProtocol(Clock(), served_ports={7})
        port = FakeUDPPort(protocol, 19)
        protocol.datagramReceived(b"x", ("127.0.0.1", 7))
        protocol.datagramReceived(b"x", ("127.0.0.1", 5007))
        self.assertEqual(len(port.fake.sent), 1)
        self.assertEqual(protocol.counters.get("udp_refused_port"), 1)


class ChargenTCPLoopbackTests(TestCase):
    """TCP chargen on real loopback sockets."""

    timeout = 30

    def listen(self, limits: Limits = DEFAULT_LIMITS, interface: str = "127.0.0.1") -> Any:
        factory = ChargenFactory(reactor, limits)
        port = reactor.listenTCP(0, factory, interface=interface)
        self.addCleanup(port.stopListening)
        self.addCleanup(wait_until, lambda: factory.limiter.total == 0)
        return factory, port.getHost().port

    async def test_client_ipv4(self) -> None:
        """4 MiB through the client: exactly the RFC's stream."""
        _, port = self.listen()
        count = 4 << 20
        got = await chargen_tcp(reactor, "127.0.0.1", port, count)
        self.assertEqual(got, (PERIOD * (count // len(PERIOD) + 1))[:count])

    async def test_client_ipv6(self) -> None:
        """The same over ::1."""
        _, port = self.listen(interface="::1")
        got = await chargen_tcp(reactor, "::1", port, 10000)
        self.assertEqual(got, rfc864_stream(136)[:10000])

    test_client_ipv6.skip = IPV6_SKIP  # type: ignore[attr-defined]

    async def test_closed_early_is_protocol_error(self) -> None:
        """A server that closes before the count is a ProtocolError."""
        from twisted.internet.protocol import Factory, Protocol

        class Short(Protocol):
            def connectionMade(self) -> None:
                self.transport.write(chargen_line(0))  # type: ignore[union-attr]
                self.transport.loseConnection()  # type: ignore[union-attr]

        listening = reactor.listenTCP(0, Factory.forProtocol(Short), interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        with self.assertRaisesRegex(ProtocolError, "closed after 74 of 1000 bytes"):
            await chargen_tcp(reactor, "127.0.0.1", listening.getHost().port, 1000)

    async def test_non_reader_costs_little_then_aborted(self) -> None:
        """A client that never reads: the server queues under 1 MiB, stops producing,
        and the write-stall deadline aborts it."""
        limits = Limits(write_stall_timeout=0.5, idle_timeout=0, sweep_interval=0.1)
        factory, port = self.listen(limits)
        client = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(client.close)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await wait_until(lambda: any(c.write_blocked() for c in factory.watch.connections()))
        queued = [c.pending() - (1 << 62) + c._tx for c in factory.watch.connections()]
        self.assertLess(max(queued), 1 << 20)
        await wait_until(lambda: factory.counters.get("tcp_stall_aborted") == 1, 10)
        await wait_until(lambda: closed_by_peer(client) or _reset(client))

    async def test_fast_reader_not_aborted(self) -> None:
        """A client reading for longer than the write-stall deadline is never aborted."""
        limits = Limits(write_stall_timeout=0.3, idle_timeout=0.3, sweep_interval=0.05)
        factory, port = self.listen(limits)
        client = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(client.close)
        client.setblocking(False)
        got = 0
        for _ in range(120):  # about 1.2 s of reading, four deadlines and more
            await sleep(0.01)
            try:
                while True:
                    chunk = client.recv(1 << 16)
                    if not chunk:
                        break
                    got += len(chunk)
            except BlockingIOError:
                pass
        self.assertEqual(factory.counters.get("tcp_stall_aborted"), 0)
        self.assertEqual(factory.counters.get("tcp_idle_aborted"), 0)
        self.assertGreater(got, 0)
        client.close()


def _reset(sock: socket.socket) -> bool:
    try:
        sock.recv(1 << 20, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return False


class ChargenUDPLoopbackTests(TestCase):
    """UDP chargen on real loopback sockets, and the loops it could start."""

    timeout = 30

    def listen(self, protocol: Any, interface: str = "127.0.0.1") -> int:
        port = reactor.listenUDP(0, protocol, interface=interface, maxPacketSize=65535)
        self.addCleanup(port.stopListening)
        number: int = port.getHost().port
        return number

    async def test_client_ipv4_and_ipv6(self) -> None:
        """The client's 74-byte request gets one line back, over IPv4 and IPv6."""
        port = self.listen(ChargenDatagramProtocol(reactor))
        self.assertEqual(await chargen_udp(reactor, "127.0.0.1", port), chargen_line(0))
        if IPV6_SKIP is None:
            port6 = self.listen(ChargenDatagramProtocol(reactor), "::1")
            self.assertEqual(await chargen_udp(reactor, "::1", port6, 10), chargen_line(0)[:10])

    async def assert_loop_bounded(self, a: Any, b: Any) -> None:
        """Forge one datagram from A's port to B; the bouncing stops within the budget."""
        self.listen(a)
        port_b = self.listen(b)
        a.transport.write(b"loop" * 10, ("127.0.0.1", port_b))

        def replies() -> int:
            return int(a.counters.get("udp_replies_sent") + b.counters.get("udp_replies_sent"))

        last = -1
        for _ in range(300):  # at most 3 s
            await sleep(0.01)
            if replies() == last and replies() > 0:
                break
            last = replies()
        await sleep(0.3)
        self.assertEqual(replies(), last, "still bouncing")
        self.assertLessEqual(replies(), 2 * Limits().udp_burst + 2)
        limited = a.counters.get("udp_rate_limited") + b.counters.get("udp_rate_limited")
        self.assertEqual(limited, 1)

    async def test_loop_chargen_echo(self) -> None:
        """chargen <-> echo on high ports (separate processes' view): within the budget."""
        await self.assert_loop_bounded(
            ChargenDatagramProtocol(reactor), EchoDatagramProtocol(reactor)
        )

    async def test_loop_chargen_chargen(self) -> None:
        """chargen <-> chargen, even in RFC mode: within the budget."""
        await self.assert_loop_bounded(
            ChargenDatagramProtocol(reactor, rfc=True), ChargenDatagramProtocol(reactor, rfc=True)
        )

    async def test_served_ports_stop_loop_at_once(self) -> None:
        """In one process the served ports are shared: the forged datagram is refused outright."""
        served: set[int] = set()
        a = ChargenDatagramProtocol(reactor, served_ports=served)
        b = EchoDatagramProtocol(reactor, served_ports=served)
        served.update({self.listen(a), port_b := self.listen(b)})
        a.transport.write(b"loop", ("127.0.0.1", port_b))  # type: ignore[union-attr]
        await wait_until(lambda: b.counters.get("udp_refused_served") == 1)
        await sleep(0.05)
        self.assertEqual(a.counters.get("udp_datagrams_received"), 0)
