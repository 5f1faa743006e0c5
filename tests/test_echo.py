"""RFC 862 echo: the TCP and UDP servers, their protections, and the clients."""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import Clock, LoopingCall
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from netproto.echo import (
    MAX_UDP_IPV4,
    MAX_UDP_IPV6,
    EchoDatagramProtocol,
    EchoFactory,
    EchoProtocol,
    MismatchError,
    RefusedError,
    ServiceTimeoutError,
    echo_tcp,
    echo_udp,
)
from netproto.limits import DEFAULT_LIMITS, Limits
from tests._fakes import FakeUDPPort, UDPMemoryReactor, assert_refused
from tests._helpers import root_skip_reason, tool_skip_reason
from tests._servers import IPV6_SKIP, closed_by_peer, closed_port, reactor, sleep, wait_until

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


def connect(factory: EchoFactory, peer: Any = PEER) -> tuple[EchoProtocol, StringTransport]:
    """Build a server protocol for *peer* and connect it to a StringTransport."""
    protocol = factory.buildProtocol(peer)
    assert isinstance(protocol, EchoProtocol)
    transport = StringTransport(peerAddress=peer)
    protocol.makeConnection(transport)
    return protocol, transport


class EchoProtocolTests(SynchronousTestCase):
    """The TCP echo protocol over a StringTransport."""

    def test_echo(self) -> None:
        """Every byte comes back in order, and is counted in both directions."""
        factory = EchoFactory(Clock())
        protocol, transport = connect(factory)
        for chunk in (b"hello ", b"", b"\x00\xff world\r\n"):
            protocol.dataReceived(chunk)
        self.assertEqual(transport.value(), b"hello \x00\xff world\r\n")
        protocol.connectionLost()
        snap = factory.counters.snapshot()
        self.assertEqual(
            (snap["tcp_connections"], snap["tcp_bytes_received"], snap["tcp_bytes_sent"]),
            (1, 16, 16),
        )

    def test_flow_control(self) -> None:
        """The protocol is the transport's streaming producer and passes pause/resume on."""
        protocol, transport = connect(EchoFactory(Clock()))
        self.assertIs(transport.producer, protocol)
        self.assertTrue(transport.streaming)
        protocol.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        self.assertTrue(protocol.write_blocked())
        protocol.resumeProducing()
        self.assertEqual(transport.producerState, "producing")
        self.assertFalse(protocol.write_blocked())

    def test_half_close(self) -> None:
        """After the client's half-close the producer is unregistered and the server closes."""
        protocol, transport = connect(EchoFactory(Clock()))
        self.assertTrue(IHalfCloseableProtocol.providedBy(protocol))
        protocol.dataReceived(b"owed")
        protocol.readConnectionLost()
        self.assertIsNone(transport.producer)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"owed")

    def test_per_peer_limit(self) -> None:
        """Over the per-peer cap, buildProtocol refuses; IPv4-mapped peers count as IPv4."""
        factory = EchoFactory(Clock(), Limits(max_connections_per_peer=2))
        first, _ = connect(factory)
        connect(factory, IPv6Address("TCP", "::ffff:127.0.0.1", 1))
        assert_refused(self, factory, PEER)
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "127.0.0.2", 1)))
        self.assertEqual(factory.counters.get("tcp_refused_peer"), 1)
        first.connectionLost()
        self.assertIsNotNone(factory.buildProtocol(PEER))

    def test_refusal_inside_wrapping_factory(self) -> None:
        """A refusal under a wrapping factory (as TLS endpoints use) aborts cleanly."""
        from twisted.protocols.policies import WrappingFactory

        factory = EchoFactory(Clock(), Limits(max_connections=1))
        connect(factory)
        wrapped = WrappingFactory(factory).buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        wrapped.makeConnection(transport)
        self.assertTrue(transport.disconnected)
        self.assertEqual(factory.counters.get("tcp_refused_total"), 1)

    def test_total_limit(self) -> None:
        """Over the total cap, every peer is refused."""
        factory = EchoFactory(Clock(), Limits(max_connections=1))
        connect(factory)
        assert_refused(self, factory, IPv4Address("TCP", "127.0.0.9", 1))
        self.assertEqual(factory.counters.get("tcp_refused_total"), 1)

    def test_idle_timeout_aborts(self) -> None:
        """The factory's periodic sweep aborts a silent connection after idle_timeout."""
        clock = Clock()
        factory = EchoFactory(clock, Limits(idle_timeout=10, write_stall_timeout=0))
        factory.doStart()
        self.addCleanup(factory.doStop)
        _, quiet_transport = connect(factory)
        busy, busy_transport = connect(factory, IPv4Address("TCP", "127.0.0.2", 1))
        for _ in range(11):
            busy.dataReceived(b"x")
            clock.advance(1)
        self.assertTrue(quiet_transport.disconnected)  # aborted, not a graceful close
        self.assertFalse(busy_transport.disconnecting)
        self.assertEqual(factory.counters.get("tcp_idle_aborted"), 1)

    def test_write_stall_aborts(self) -> None:
        """A paused connection whose peer keeps trickling bytes is aborted after the stall
        deadline."""
        clock = Clock()
        factory = EchoFactory(clock, Limits(idle_timeout=300, write_stall_timeout=5))
        factory.doStart()
        self.addCleanup(factory.doStop)
        protocol, transport = connect(factory)
        protocol.pauseProducing()
        for _ in range(7):
            protocol.dataReceived(b"x")
            clock.advance(1)
        self.assertTrue(transport.disconnected)
        self.assertEqual(factory.counters.get("tcp_stall_aborted"), 1)

    def test_counters_flushed_by_sweep(self) -> None:
        """Byte counters of live connections are brought up to date by the sweep."""
        clock = Clock()
        factory = EchoFactory(clock, Limits(sweep_interval=1))
        factory.doStart()
        self.addCleanup(factory.doStop)
        protocol, _ = connect(factory)
        protocol.dataReceived(b"12345")
        self.assertEqual(factory.counters.get("tcp_bytes_received"), 0)
        clock.advance(1)
        self.assertEqual(factory.counters.get("tcp_bytes_received"), 5)

    def test_stop_factory_stops_timers(self) -> None:
        """doStop cancels the sweep and summary timers."""
        clock = Clock()
        factory = EchoFactory(clock)
        factory.doStart()
        self.assertEqual(len(clock.getDelayedCalls()), 2)
        factory.doStop()
        self.assertEqual(clock.getDelayedCalls(), [])


class _PartialSocket:
    """A socket whose send takes at most *room* bytes, then raises EAGAIN."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.sent = b""

    def send(self, data: bytes) -> int:
        if not self.room:
            raise BlockingIOError(errno.EAGAIN, "would block")
        taken = bytes(data[: self.room])
        self.room -= len(taken)
        self.sent += taken
        return len(taken)


class _SocketTransport(FileDescriptor):
    """A FileDescriptor with a socket, as Twisted's TCP transports are."""

    def __init__(self, sock: _PartialSocket) -> None:
        super().__init__(reactor=MemoryReactor())
        self.socket = sock
        self.connected = True

    def getPeer(self) -> IPv4Address:
        return PEER

    def getHost(self) -> IPv4Address:
        return PEER

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.no_delay = enabled


class DirectSendTests(SynchronousTestCase):
    """The send-at-once path for socket transports."""

    def test_order_kept(self) -> None:
        """What the kernel does not take is queued, and later data queues behind it."""
        sock = _PartialSocket(room=4)
        transport = _SocketTransport(sock)
        protocol = EchoFactory(Clock()).buildProtocol(PEER)
        assert protocol is not None
        protocol.makeConnection(transport)
        self.assertTrue(transport.no_delay)
        protocol.dataReceived(b"abcdef")
        protocol.dataReceived(b"ghi")
        self.assertEqual(sock.sent, b"abcd")
        self.assertEqual(transport.dataBuffer + b"".join(transport._tempDataBuffer), b"efghi")
        self.assertEqual(protocol.pending(), 5)
        self.assertEqual(protocol.activity(), 9)

    def test_sent_at_once(self) -> None:
        """With room in the kernel, nothing is queued in the transport."""
        sock = _PartialSocket(room=1 << 20)
        transport = _SocketTransport(sock)
        protocol = EchoFactory(Clock()).buildProtocol(PEER)
        assert protocol is not None
        protocol.makeConnection(transport)
        for _ in range(3):
            protocol.dataReceived(b"x" * 1000)
        self.assertEqual((len(sock.sent), protocol.pending()), (3000, 0))


class EchoDatagramTests(SynchronousTestCase):
    """The UDP echo protocol with a fake port and a MemoryReactorClock."""

    def test_echo_identical(self) -> None:
        """Admitted datagrams of any size come back identical, to their source."""
        reactor = UDPMemoryReactor()
        protocol = EchoDatagramProtocol(reactor)
        port = reactor.listenUDP(7, protocol)
        for size in (0, 1, 8192, MAX_UDP_IPV4):
            data = os.urandom(size)
            protocol.datagramReceived(data, ("127.0.0.1", 40000 + size))
            self.assertEqual(port.fake.sent[-1], (data, ("127.0.0.1", 40000 + size)))
        self.assertEqual(protocol.counters.get("udp_replies_sent"), 4)

    def test_refusals_counted(self) -> None:
        """Refused datagrams get no answer and are counted by reason."""
        reactor = UDPMemoryReactor()
        served = {5007}
        protocol = EchoDatagramProtocol(reactor, served_ports=served)
        port = reactor.listenUDP(7, protocol)
        protocol.datagramReceived(b"x", ("127.0.0.1", 0))
        protocol.datagramReceived(b"x", ("127.0.0.1", 19))
        protocol.datagramReceived(b"x", ("127.0.0.1", 2049))
        protocol.datagramReceived(b"x", ("::ffff:127.0.0.1", 5007))
        protocol.datagramReceived(b"x", ("::ffff:255.255.255.255", 5000))
        protocol.datagramReceived(b"x", ("224.0.0.1", 5000))
        self.assertEqual(port.fake.sent, [])
        snap = protocol.counters.snapshot()
        self.assertEqual(
            (
                snap["udp_refused_port"],
                snap["udp_refused_served"],
                snap["udp_refused_source"],
                snap["udp_datagrams_received"],
            ),
            (3, 1, 2, 6),
        )

    def test_rate_limited_per_source(self) -> None:
        """A flooding source gets its burst; another source is still answered."""
        reactor = UDPMemoryReactor()
        protocol = EchoDatagramProtocol(reactor, Limits(udp_rate=1, udp_burst=3))
        port = reactor.listenUDP(7, protocol)
        for _ in range(100):
            protocol.datagramReceived(b"x", ("127.0.0.1", 5000))
        protocol.datagramReceived(b"y", ("127.0.0.2", 5000))
        self.assertEqual(len(port.fake.sent), 4)
        self.assertEqual(protocol.counters.get("udp_rate_limited"), 97)
        reactor.advance(1)
        protocol.datagramReceived(b"x", ("127.0.0.1", 5000))
        self.assertEqual(len(port.fake.sent), 5)

    def test_send_errors_counted(self) -> None:
        """EAGAIN and ENOBUFS on send are counted, never raised (socket and write paths)."""
        reactor = UDPMemoryReactor()
        protocol = EchoDatagramProtocol(reactor)
        port = reactor.listenUDP(7, protocol)
        for code in (errno.EAGAIN, errno.ENOBUFS):
            port.fake.fail = code
            protocol.datagramReceived(b"x", ("127.0.0.1", 5000))
        other = EchoDatagramProtocol(reactor)
        fallback = FakeUDPPort(other, with_socket=False)
        fallback.fake.fail = errno.ENOBUFS
        other.datagramReceived(b"x", ("127.0.0.1", 5000))
        fallback.fake.fail = None
        other.datagramReceived(b"y", ("127.0.0.1", 5000))
        self.assertEqual(protocol.counters.get("udp_send_errors"), 2)
        self.assertEqual(other.counters.get("udp_send_errors"), 1)
        self.assertEqual(fallback.written, [(b"y", ("127.0.0.1", 5000))])

    def test_summary_not_per_packet(self) -> None:
        """A flood of refused datagrams logs one summary per interval, driven by the reactor."""
        reactor = UDPMemoryReactor()
        protocol = EchoDatagramProtocol(reactor, Limits(summary_interval=60))
        events: list[dict[str, Any]] = []
        from twisted.logger import Logger

        protocol.summary.log = Logger(observer=events.append)
        reactor.listenUDP(7, protocol)
        for i in range(10000):
            protocol.datagramReceived(b"x", ("127.0.0.1", i % 1024))
        self.assertEqual(events, [])
        reactor.advance(60)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["refusals"], {"udp_refused_port": 10000})
        reactor.advance(600)
        self.assertEqual(len(events), 1)
        reactor.udpPorts[7].stopListening()
        self.assertEqual(reactor.getDelayedCalls(), [])


class EchoTCPLoopbackTests(TestCase):
    """TCP echo on real loopback sockets."""

    timeout = 30

    def listen(
        self, limits: Limits = DEFAULT_LIMITS, interface: str = "127.0.0.1"
    ) -> tuple[Any, int]:
        factory = EchoFactory(reactor, limits)
        port = reactor.listenTCP(0, factory, interface=interface)
        self.addCleanup(port.stopListening)
        self.addCleanup(wait_until, lambda: factory.limiter.total == 0)
        return factory, port.getHost().port

    async def test_half_close_8mib_ipv4(self) -> None:
        """8 MiB sent then SHUT_WR: every byte comes back, then the server closes."""
        factory, port = self.listen()
        data = os.urandom(8 << 20)
        self.assertEqual(await echo_tcp(reactor, "127.0.0.1", port, data), data)
        await wait_until(lambda: factory.limiter.total == 0)
        self.assertEqual(factory.counters.get("tcp_bytes_received"), 8 << 20)

    async def test_half_close_ipv6(self) -> None:
        """The same over IPv6 (::1), with an empty exchange too."""
        _, port = self.listen(interface="::1")
        data = os.urandom(1 << 20)
        self.assertEqual(await echo_tcp(reactor, "::1", port, data), data)
        self.assertEqual(await echo_tcp(reactor, "::1", port, b""), b"")

    test_half_close_ipv6.skip = IPV6_SKIP  # type: ignore[attr-defined]

    async def test_non_reading_client(self) -> None:
        """A client that writes and never reads stalls the server's reading (bounded memory)
        and is aborted by the write-stall deadline."""
        limits = Limits(write_stall_timeout=0.5, idle_timeout=0, sweep_interval=0.1)
        factory, port = self.listen(limits)
        client = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(client.close)
        client.setblocking(False)
        chunk = b"x" * 65536
        state = {"sent": 0, "max_pending": 0, "reset": False}

        def pump() -> None:
            try:
                while state["sent"] < 256 << 20:
                    state["sent"] += client.send(chunk)
            except BlockingIOError:
                pass
            except OSError:
                state["reset"] = True
                loop.stop()
                return
            for conn in factory.watch.connections():
                state["max_pending"] = max(state["max_pending"], conn.pending() or 0)

        loop = LoopingCall(pump)
        loop.clock = reactor
        done = loop.start(0.005)
        self.addCleanup(lambda: loop.running and loop.stop())
        await wait_until(lambda: factory.counters.get("tcp_stall_aborted") == 1, 10)
        await wait_until(lambda: bool(state["reset"]), 5)
        await done
        # Kernel buffers took a few MB; the server itself queued at most ~2 reads.
        self.assertLess(state["sent"], 64 << 20)
        self.assertLessEqual(state["max_pending"], 256 << 10)

    async def test_per_peer_cap_dual_stack(self) -> None:
        """On a dual-stack listener, IPv4 peers are counted by their IPv4 address, and a
        connection over the per-peer cap is closed without a byte."""
        factory, port = self.listen(Limits(max_connections_per_peer=2), interface="::")
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        for client in clients:
            self.addCleanup(client.close)
        await wait_until(lambda: factory.counters.get("tcp_refused_peer") == 1)
        self.assertEqual(factory.limiter.by_peer, {"127.0.0.1": 2})
        await wait_until(lambda: closed_by_peer(clients[2]))
        for client in clients:
            client.close()

    test_per_peer_cap_dual_stack.skip = IPV6_SKIP  # type: ignore[attr-defined]

    async def test_idle_aborted(self) -> None:
        """A connected client that sends nothing is aborted after the idle timeout."""
        factory, port = self.listen(Limits(idle_timeout=0.3, sweep_interval=0.05))
        client = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(client.close)
        await wait_until(lambda: factory.counters.get("tcp_idle_aborted") == 1, 5)
        await wait_until(lambda: closed_by_peer(client))

    async def test_refused(self) -> None:
        """A closed port is a RefusedError."""
        with self.assertRaises(RefusedError):
            await echo_tcp(reactor, "127.0.0.1", closed_port(socket.SOCK_STREAM), b"x")

    async def test_mismatch_and_timeout(self) -> None:
        """A server that answers other bytes is a MismatchError; one that is silent, a timeout."""
        from twisted.internet.protocol import Factory, Protocol

        @implementer(IHalfCloseableProtocol)
        class Upper(Protocol):
            def dataReceived(self, data: bytes) -> None:
                self.transport.write(data.upper())  # type: ignore[union-attr]

            def readConnectionLost(self) -> None:
                self.transport.loseConnection()  # type: ignore[union-attr]

        @implementer(IHalfCloseableProtocol)
        class Silent(Protocol):
            def readConnectionLost(self) -> None:
                pass  # never answers, never closes

        ports = []
        for proto in (Upper, Silent):
            listening = reactor.listenTCP(0, Factory.forProtocol(proto), interface="127.0.0.1")
            self.addCleanup(listening.stopListening)
            ports.append(listening.getHost().port)
        with self.assertRaisesRegex(MismatchError, "differing from byte 0"):
            await echo_tcp(reactor, "127.0.0.1", ports[0], b"abc")
        with self.assertRaises(ServiceTimeoutError):
            await echo_tcp(reactor, "127.0.0.1", ports[1], b"abc", timeout=0.2)
        await sleep(0.05)

    async def test_nc_client(self) -> None:
        """The system's nc, half-closing with -N, gets 1 MiB back intact."""
        _, port = self.listen()
        data = os.urandom(1 << 20)
        path = os.path.abspath(self.mktemp())
        with open(path, "wb") as f:
            f.write(data)
        out, err, code = await getProcessOutputAndValue(
            "/bin/sh", ["-c", f"nc -N 127.0.0.1 {port} < {path}"], env=os.environ
        )
        self.assertEqual((code, err), (0, b""))
        self.assertEqual(out, data)

    test_nc_client.skip = tool_skip_reason("nc")  # type: ignore[attr-defined]


class EchoUDPLoopbackTests(TestCase):
    """UDP echo on real loopback sockets."""

    timeout = 30

    def listen(
        self,
        limits: Limits = DEFAULT_LIMITS,
        interface: str = "127.0.0.1",
        served: set[int] | None = None,
    ) -> tuple[EchoDatagramProtocol, int]:
        protocol = EchoDatagramProtocol(reactor, limits, served_ports=served)
        port = reactor.listenUDP(0, protocol, interface=interface, maxPacketSize=65535)
        self.addCleanup(port.stopListening)
        return protocol, port.getHost().port

    async def test_sizes_ipv4(self) -> None:
        """0, 1 and 65,507 bytes (the IPv4 maximum) come back identical."""
        _, port = self.listen()
        for size in (0, 1, MAX_UDP_IPV4):
            data = os.urandom(size)
            self.assertEqual(await echo_udp(reactor, "127.0.0.1", port, data), data)

    async def test_sizes_ipv6(self) -> None:
        """0 and 65,527 bytes (the IPv6 maximum) come back identical over ::1."""
        _, port = self.listen(interface="::1")
        for size in (0, MAX_UDP_IPV6):
            data = os.urandom(size)
            self.assertEqual(await echo_udp(reactor, "::1", port, data), data)

    test_sizes_ipv6.skip = IPV6_SKIP  # type: ignore[attr-defined]

    async def test_refused_and_timeout(self) -> None:
        """ICMP port unreachable is a RefusedError; a silent socket is a timeout."""
        with self.assertRaises(RefusedError):
            await echo_udp(reactor, "127.0.0.1", closed_port(socket.SOCK_DGRAM), b"x")
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(silent.close)
        silent.bind(("127.0.0.1", 0))
        with self.assertRaises(ServiceTimeoutError):
            await echo_udp(reactor, "127.0.0.1", silent.getsockname()[1], b"x", timeout=0.2)

    async def test_loop_between_two_servers_stops(self) -> None:
        """One forged datagram between two echo servers on high ports stops bouncing:
        the per-source budget ends the loop after at most a burst of replies each."""
        a, _ = self.listen()
        b, port_b = self.listen()
        # Forge: a datagram to B whose source is A's port.
        a.transport.write(b"loop", ("127.0.0.1", port_b))  # type: ignore[union-attr]

        def replies() -> int:
            return a.counters.get("udp_replies_sent") + b.counters.get("udp_replies_sent")

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

    async def test_served_ports_stop_loop_at_once(self) -> None:
        """With the served ports shared, the forged datagram is refused outright."""
        served: set[int] = set()
        a, port_a = self.listen(served=served)
        b, port_b = self.listen(served=served)
        served.update({port_a, port_b})
        a.transport.write(b"loop", ("127.0.0.1", port_b))  # type: ignore[union-attr]
        await wait_until(lambda: b.counters.get("udp_refused_served") == 1)
        await sleep(0.05)
        self.assertEqual(a.counters.get("udp_datagrams_received"), 0)

    async def test_privileged_source_port_refused(self) -> None:
        """A datagram from a source port below 1024 (bound as root) gets no answer."""
        protocol, port = self.listen()
        low = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(low.close)
        for candidate in range(1000, 600, -1):
            try:
                low.bind(("127.0.0.1", candidate))
                break
            except OSError:
                continue
        low.sendto(b"hi", ("127.0.0.1", port))
        await wait_until(lambda: protocol.counters.get("udp_refused_port") == 1)
        low.setblocking(False)
        await sleep(0.05)
        with self.assertRaises(BlockingIOError):
            low.recv(10)

    test_privileged_source_port_refused.skip = root_skip_reason()  # type: ignore[attr-defined]

    async def test_socat_client(self) -> None:
        """The system's socat, as a UDP client, gets its datagram back."""
        _, port = self.listen()
        out, _, code = await getProcessOutputAndValue(
            "/bin/sh",
            ["-c", f"printf 'socat says hi' | socat -t 2 - UDP:127.0.0.1:{port}"],
            env=os.environ,
        )
        self.assertEqual((code, out), (0, b"socat says hi"))

    test_socat_client.skip = tool_skip_reason("socat")  # type: ignore[attr-defined]
