"""RFC 863 discard: the servers count and answer nothing; the clients."""

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
from tests._fakes import FakeUDPPort
from tests._servers import IPV6_SKIP, closed_by_peer, closed_port, reactor, wait_until

PEER = IPv4Address("TCP", "127.0.0.1", 4000)


class ServerTests(SynchronousTestCase):
    """The servers on fakes."""

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
        # The hook a batching port (recvmmsg) calls: no answer to send either.
        self.assertIsNone(udp.answer(b"abc", ("127.0.0.1", 5000)))
        self.assertEqual(udp.counters.get("udp_datagrams_received"), 4)


class ClientTests(TestCase):
    """The clients against our servers on loopback, IPv4 and IPv6."""

    timeout = 20

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
