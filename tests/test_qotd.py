"""RFC 865 qotd: quotes files, the servers, the clients."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

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
from tests._servers import IPV6_SKIP, reactor

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
