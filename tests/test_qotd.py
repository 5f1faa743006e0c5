"""RFC 865 qotd and RFC 863 discard: quotes files, the servers, the clients."""

from __future__ import annotations

import socket

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto.discard import (
    DiscardDatagramProtocol,
    DiscardFactory,
    ProtocolError,
    RefusedError,
    discard_tcp,
    discard_udp,
)
from netproto.limits import Limits
from netproto.qotd import (
    MAX_QUOTE,
    QotdDatagramProtocol,
    QotdFactory,
    load_quotes,
    parse_quotes,
    qotd_tcp,
    qotd_udp,
)
from tests._fakes import FakeUDPPort
from tests._servers import IPV6_SKIP, closed_by_peer, closed_port, reactor, wait_until

PEER = IPv4Address("TCP", "127.0.0.1", 4000)


class QuotesFileTests(SynchronousTestCase):
    """Reading quotes: fortune format, paragraphs, and what is refused."""

    def test_fortune_format(self) -> None:
        """Quotes between % lines, CRLF line endings, blank edges trimmed."""
        quotes = parse_quotes("first line\nsecond\n%\n\nthird\n%\n")
        self.assertEqual(quotes, (b"first line\r\nsecond\r\n", b"third\r\n"))

    def test_paragraphs(self) -> None:
        """Without % lines, blank lines separate the quotes."""
        self.assertEqual(parse_quotes("one\n\n\ntwo\nmore\n"), (b"one\r\n", b"two\r\nmore\r\n"))

    def test_refused(self) -> None:
        """Too long (511 bytes is the most), non-ASCII, or empty: one line naming the quote."""
        self.assertEqual(len(parse_quotes("x" * (MAX_QUOTE - 2))[0]), MAX_QUOTE)
        with self.assertRaisesRegex(ValueError, r"f, quote at line 3: 512 bytes"):
            parse_quotes("ok\n%\n" + "x" * (MAX_QUOTE - 1), "f")
        with self.assertRaisesRegex(ValueError, "not printable ASCII"):
            parse_quotes("bell \x07 here")
        with self.assertRaisesRegex(ValueError, "no quote"):
            parse_quotes("%\n%\n")

    def test_load(self) -> None:
        """A file is read as ASCII; a missing or non-ASCII file is a one-line ValueError."""
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b"a\n%\nb\n")
        self.assertEqual(load_quotes(path), (b"a\r\n", b"b\r\n"))
        with open(path, "wb") as f:
            f.write(b"caf\xc3\xa9\n")
        with self.assertRaisesRegex(ValueError, "line 1: not ASCII"):
            load_quotes(path)
        with self.assertRaisesRegex(ValueError, "No such file"):
            load_quotes(path + ".missing")


class ServerTests(SynchronousTestCase):
    """The servers on fakes."""

    def test_qotd_rotates(self) -> None:
        """TCP connections and UDP datagrams each get the next quote, round and round."""
        factory = QotdFactory(Clock(), quotes=(b"a\r\n", b"b\r\n"))
        seen = []
        for _ in range(3):
            protocol = factory.buildProtocol(PEER)
            transport = StringTransport(peerAddress=PEER)
            protocol.makeConnection(transport)
            seen.append(transport.value())
            self.assertTrue(transport.disconnecting)
        self.assertEqual(seen, [b"a\r\n", b"b\r\n", b"a\r\n"])
        protocol = QotdDatagramProtocol(Clock(), quotes=(b"a\r\n", b"b\r\n"))
        port = FakeUDPPort(protocol, 17)
        protocol.datagramReceived(b"", ("127.0.0.1", 5000))
        protocol.datagramReceived(b"", ("127.0.0.1", 5000))
        self.assertEqual([d for d, _ in port.fake.sent], [b"a\r\n", b"b\r\n"])

    def test_discard_counts_and_answers_nothing(self) -> None:
        """TCP bytes are counted, nothing is written; UDP datagrams too, never answered."""
        factory = DiscardFactory(Clock())
        protocol = factory.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        protocol.dataReceived(b"x" * 5000)
        protocol.readConnectionLost()  # type: ignore[attr-defined]
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost()
        self.assertEqual(transport.value(), b"")
        self.assertEqual(factory.counters.get("tcp_bytes_received"), 5000)
        udp = DiscardDatagramProtocol(Clock())
        port = FakeUDPPort(udp, 9)
        for source_port in (5000, 19, 0):  # even a chargen's port: nothing goes back
            udp.datagramReceived(b"abc", ("127.0.0.1", source_port))
        self.assertEqual((port.fake.sent, port.written), ([], []))
        self.assertEqual(udp.counters.get("udp_bytes_received"), 9)


class ClientTests(TestCase):
    """The clients against our servers on loopback, IPv4 and IPv6."""

    timeout = 20

    async def test_qotd(self) -> None:
        """TCP over IPv4, UDP over IPv6 (when there)."""
        quotes = (b"one\r\n", b"two\r\n")
        tcp = reactor.listenTCP(0, QotdFactory(reactor, quotes=quotes), interface="127.0.0.1")
        self.addCleanup(tcp.stopListening)
        self.assertEqual(await qotd_tcp(reactor, "127.0.0.1", tcp.getHost().port), b"one\r\n")
        interface = "127.0.0.1" if IPV6_SKIP else "::1"
        udp = reactor.listenUDP(
            0, QotdDatagramProtocol(reactor, quotes=quotes), interface=interface
        )
        self.addCleanup(udp.stopListening)
        self.assertEqual(await qotd_udp(reactor, interface, udp.getHost().port), b"one\r\n")

    async def test_discard(self) -> None:
        """8 MiB over TCP; a datagram over UDP; a closed UDP port is refused."""
        factory = DiscardFactory(reactor, Limits())
        tcp = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(tcp.stopListening)
        data = b"z" * (8 << 20)
        self.assertEqual(await discard_tcp(reactor, "127.0.0.1", tcp.getHost().port, data), 8 << 20)
        await wait_until(lambda: factory.counters.get("tcp_bytes_received") == 8 << 20)
        interface = "127.0.0.1" if IPV6_SKIP else "::1"
        protocol = DiscardDatagramProtocol(reactor)
        udp = reactor.listenUDP(0, protocol, interface=interface)
        self.addCleanup(udp.stopListening)
        self.assertEqual(await discard_udp(reactor, interface, udp.getHost().port, b"abc"), 3)
        self.assertEqual(protocol.counters.get("udp_bytes_received"), 3)
        with self.assertRaises(RefusedError):
            await discard_udp(reactor, "127.0.0.1", closed_port(socket.SOCK_DGRAM), b"x")

    async def test_discard_server_that_answers(self) -> None:
        """A 'discard' server that sends something back is a ProtocolError."""
        from netproto.echo import EchoFactory

        tcp = reactor.listenTCP(0, EchoFactory(reactor), interface="127.0.0.1")
        self.addCleanup(tcp.stopListening)
        with self.assertRaises(ProtocolError):
            await discard_tcp(reactor, "127.0.0.1", tcp.getHost().port, b"abc")

    async def test_discard_idle_aborted(self) -> None:
        """A connected client that sends nothing is aborted after the idle timeout."""
        factory = DiscardFactory(reactor, Limits(idle_timeout=0.3, sweep_interval=0.05))
        tcp = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(tcp.stopListening)
        client = socket.create_connection(("127.0.0.1", tcp.getHost().port))
        self.addCleanup(client.close)
        await wait_until(lambda: factory.counters.get("tcp_idle_aborted") == 1, 5)
        await wait_until(lambda: closed_by_peer(client))
