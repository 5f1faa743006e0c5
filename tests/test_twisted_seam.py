"""
The canary of netproto/_twisted.py: every private name of Twisted's that
netproto uses still exists and still behaves as the seam assumes. When a
Twisted release changes one, these tests fail and name it.
"""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace
from typing import Any

from twisted.internet import endpoints, main, tcp, udp
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.python.systemd import ListenFDs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto import _twisted
from tests._servers import reactor, sleep, wait_until


class _Recorder(Protocol):
    """Keeps what it is told, for the server side of a real connection."""

    def __init__(self) -> None:
        self.lost: list[Failure] = []

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.append(reason)


class NamesTests(SynchronousTestCase):
    """Each entry of PRIVATE_NAMES exists in the installed Twisted."""

    def test_listed(self) -> None:
        """PRIVATE_NAMES lists exactly the names this test checks, each with its use."""
        self.assertEqual(
            set(_twisted.PRIVATE_NAMES),
            {
                "twisted.internet.abstract.FileDescriptor._tempDataLen",
                "twisted.internet.udp.Port._fromListeningDescriptor",
                "twisted.internet.endpoints._SystemdParser._sddaemon",
                "twisted.internet.epollreactor.EPollReactor._poller",
                "twisted.internet.epollreactor.EPollReactor._selectables",
                "twisted.internet.posixbase.PosixReactorBase._doReadOrWrite",
                "twisted.internet.posixbase.PosixReactorBase._disconnectSelectable",
                "twisted.internet.base.ReactorBase._started",
                "twisted.internet.base.ReactorBase._justStopped",
                "twisted.internet.base.ReactorBase._newTimedCalls",
                "twisted.internet.base.ReactorBase._pendingTimedCalls",
            },
        )
        for use in _twisted.PRIVATE_NAMES.values():
            self.assertTrue(use)

    def test_udp_adoption(self) -> None:
        """udp.Port._fromListeningDescriptor is a classmethod taking the arguments we pass."""
        adopt = getattr(udp.Port, "_fromListeningDescriptor", None)
        self.assertIsNotNone(adopt, "Twisted removed udp.Port._fromListeningDescriptor")

    def test_systemd_parser(self) -> None:
        """endpoints._SystemdParser._sddaemon holds the ListenFDs Twisted read at import."""
        parser = getattr(endpoints, "_SystemdParser", None)
        self.assertIsNotNone(parser, "Twisted removed endpoints._SystemdParser")
        self.assertIsInstance(getattr(parser, "_sddaemon", None), ListenFDs)
        self.assertIsInstance(_twisted.inherited_sockets(), ListenFDs)

    def test_version_known(self) -> None:
        """The running Twisted is one the seam was written against (or newer: then the
        other tests of this file are what says whether the names still hold)."""
        self.assertGreaterEqual(_twisted.VERSION, _twisted.TESTED[0])


class TransportTests(TestCase):
    """The seam's functions on a real TCP connection over loopback."""

    async def connected(self) -> tuple[tcp.Server, _Recorder, socket.socket]:
        """A server transport (its protocol a _Recorder) and the client's socket."""
        protocols: list[_Recorder] = []

        def build() -> _Recorder:
            protocols.append(_Recorder())
            return protocols[-1]

        factory = Factory.forProtocol(build)  # type: ignore[arg-type]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = socket.create_connection(("127.0.0.1", port.getHost().port))
        self.addCleanup(client.close)
        await wait_until(lambda: bool(protocols) and protocols[0].transport is not None)
        transport: Any = protocols[0].transport
        self.assertIsInstance(transport, tcp.Server)
        return transport, protocols[0], client

    async def test_queued_bytes(self) -> None:
        """_tempDataLen counts written bytes: queued_bytes sees a non-reader's backlog."""
        transport, recorder, _client = await self.connected()
        self.assertTrue(hasattr(transport, "_tempDataLen"), "FileDescriptor._tempDataLen is gone")
        self.assertEqual(_twisted.queued_bytes(transport), 0)
        transport.write(b"x" * (8 << 20))  # more than any socket buffer takes
        self.assertEqual(_twisted.queued_bytes(transport), 8 << 20)
        await sleep(0.05)
        queued = _twisted.queued_bytes(transport)
        assert queued is not None
        self.assertGreater(queued, 0)
        self.assertLess(queued, 8 << 20)
        self.assertIsNone(_twisted.queued_bytes(object()))
        transport.abortConnection()
        await wait_until(lambda: bool(recorder.lost))

    async def test_direct_writer(self) -> None:
        """direct_writer sends at once when nothing is queued, in order behind a backlog."""
        transport, recorder, client = await self.connected()
        write_now = _twisted.direct_writer(transport)
        assert write_now is not None
        write_now(b"first ")
        self.assertEqual(_twisted.queued_bytes(transport), 0)  # went straight to the kernel
        transport.write(b"second ")
        write_now(b"third")  # queued behind "second ", not ahead of it
        self.assertEqual(_twisted.queued_bytes(transport), len(b"second third"))
        received: list[bytes] = []

        def read() -> bool:
            try:
                received.append(client.recv(100, socket.MSG_DONTWAIT))
            except BlockingIOError:
                pass
            return len(b"".join(received)) >= len(b"first second third")

        await wait_until(read)
        self.assertEqual(b"".join(received), b"first second third")
        self.assertIsNone(_twisted.direct_writer(object()))
        transport.loseConnection()
        await wait_until(lambda: bool(recorder.lost))

    async def test_echo_order_and_end(self) -> None:
        """echo_directly: bytes come back at once, behind anything queued; EOF ends it."""
        transport, recorder, client = await self.connected()
        recorder._rx = 0  # type: ignore[attr-defined]
        recorder._seconds = lambda: 42.0  # type: ignore[attr-defined]
        undo = _twisted.echo_directly(transport, recorder)
        assert undo is not None
        self.assertIn("doRead", vars(transport))
        client.sendall(b"abc")
        got: list[bytes] = []

        def read(count: int) -> Any:
            def enough() -> bool:
                try:
                    got.append(client.recv(1 << 20, socket.MSG_DONTWAIT))
                except BlockingIOError:
                    pass
                return len(b"".join(got)) >= count

            return enough

        await wait_until(read(3))
        self.assertEqual(b"".join(got), b"abc")
        self.assertEqual(recorder._rx, 3)  # type: ignore[attr-defined]
        self.assertEqual(recorder._read_at, 42.0)  # type: ignore[attr-defined]
        got.clear()
        big = b"q" * (8 << 20)
        transport.write(big)  # more than the socket buffers take: some stays queued
        self.assertGreater(_twisted.queued_bytes(transport) or 0, 0)
        client.sendall(b"after")
        await wait_until(read(len(big) + 5), 30)
        self.assertEqual(b"".join(got), big + b"after")
        client.shutdown(socket.SHUT_WR)
        await wait_until(lambda: bool(recorder.lost))
        self.assertTrue(recorder.lost[0].check(ConnectionDone))
        undo()
        self.assertNotIn("doRead", vars(transport))
        self.assertIsNone(_twisted.echo_directly(object(), recorder))

    async def test_echo_read_sizes(self) -> None:
        """
        echo_directly reads *large* bytes while nothing is queued and the
        budget holds nothing, else ``bufferSize``: what a stalled peer holds
        stays bounded by one large read.
        """
        transport, recorder, client = await self.connected()
        recorder._rx = 0  # type: ignore[attr-defined]
        recorder._seconds = lambda: 1.0  # type: ignore[attr-defined]
        asked: list[int] = []
        real = transport.socket

        class Recording:
            def recv_into(self, buffer: Any, size: int) -> int:
                asked.append(size)
                return int(real.recv_into(buffer, size))

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        transport.socket = Recording()
        self.addCleanup(setattr, transport, "socket", real)
        transport.bufferSize = 1000
        budget = SimpleNamespace(used=0)
        undo = _twisted.echo_directly(transport, recorder, 50000, budget)
        assert undo is not None
        self.addCleanup(undo)
        rx = 0

        async def send(data: bytes) -> None:
            nonlocal rx
            client.sendall(data)
            rx += len(data)
            await wait_until(lambda: recorder._rx == rx)  # type: ignore[attr-defined]

        await send(b"a" * 3000)
        self.assertEqual(set(asked), {50000})
        asked.clear()
        budget.used = 1  # another peer's queue is held by the budget
        await send(b"b" * 3000)
        self.assertEqual(set(asked), {1000})
        asked.clear()
        budget.used = 0
        transport.write(b"q" * (8 << 20))  # queued for this peer
        await send(b"c" * 3000)
        self.assertEqual(set(asked), {1000})
        transport.abortConnection()
        await wait_until(lambda: bool(recorder.lost))

    async def test_write_and_close(self) -> None:
        """write_and_close: the bytes, then EOF, and the protocol's connectionLost once, now."""
        transport, recorder, client = await self.connected()
        _twisted.write_and_close(transport, b"the line\r\n")
        self.assertEqual(len(recorder.lost), 1)  # in the same turn, not the next
        client.settimeout(5)
        self.assertEqual(client.recv(100), b"the line\r\n")
        self.assertEqual(client.recv(100), b"")
        await sleep(0.01)
        self.assertEqual(len(recorder.lost), 1)


class _Received(_Recorder):
    """A _Recorder that keeps what it reads."""

    def __init__(self) -> None:
        super().__init__()
        self.data = b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data


class AcceptDirectlyTests(TestCase):
    """accept_directly on a real listening TCP port over loopback."""

    async def test_taken_or_handed_back(self) -> None:
        """take() gets each socket with its IPv4Address; a socket it keeps is its own, one
        it hands back with a protocol becomes a Twisted transport for that protocol."""
        factory = Factory.forProtocol(_Recorder)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        seen: list[Any] = []
        handed: list[_Received] = []

        def take(skt: socket.socket, address: Any) -> _Received | None:
            seen.append(address)
            if len(seen) == 1:
                skt.sendall(b"kept\n")
                skt.close()
                return None
            handed.append(_Received())
            return handed[-1]

        self.assertTrue(_twisted.accept_directly(port, take))
        where = ("127.0.0.1", port.getHost().port)
        first = socket.create_connection(where, timeout=5)
        self.addCleanup(first.close)
        await wait_until(lambda: len(seen) == 1)  # (the reactor runs in this thread)
        self.assertEqual(first.recv(100), b"kept\n")
        second = socket.create_connection(where, timeout=5)
        self.addCleanup(second.close)
        second.sendall(b"hello")
        await wait_until(lambda: bool(handed) and handed[0].data == b"hello")
        self.assertIsInstance(handed[0].transport, tcp.Server)
        self.assertEqual(
            [(a.type, a.host, a.port) for a in seen],
            [("TCP", "127.0.0.1", c.getsockname()[1]) for c in (first, second)],
        )
        self.assertIsInstance(seen[0], IPv4Address)
        second.close()
        await wait_until(lambda: bool(handed[0].lost))

    def test_other_ports_untouched(self) -> None:
        """Anything but Twisted's own TCP port is left as it is."""
        self.assertFalse(_twisted.accept_directly(object(), lambda skt, address: None))


class AdoptTests(TestCase):
    """adopt_datagram_port wraps an inherited datagram socket in a udp.Port subclass."""

    async def test_adopt(self) -> None:
        """The adopted port is of the subclass asked for, and delivers datagrams."""

        class Port(udp.Port):
            pass

        class Keep(DatagramProtocol):
            def __init__(self) -> None:
                self.got: list[bytes] = []

            def datagramReceived(self, datagram: bytes, addr: Any) -> None:
                self.got.append(datagram)

        inherited = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        inherited.bind(("127.0.0.1", 0))
        inherited.setblocking(False)
        number = inherited.getsockname()[1]
        keep = Keep()
        port = _twisted.adopt_datagram_port(
            Port, reactor, inherited.fileno(), socket.AF_INET, keep, 65535
        )
        port.startListening()
        inherited.close()
        self.addCleanup(port.stopListening)
        self.assertIsInstance(port, Port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"hello", ("127.0.0.1", number))
        await wait_until(lambda: keep.got == [b"hello"])


try:
    from twisted.internet.epollreactor import EPollReactor
except ImportError:  # not Linux
    EPollReactor = None  # type: ignore[assignment,misc]


class _Reader:
    """A reader on one end of a socket pair that records (or fails on) each read."""

    def __init__(self, sock: socket.socket, fail: bool = False) -> None:
        self.sock = sock
        self.fail = fail
        self.reads = 0
        self.lost: list[Failure] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:
        return "reader"

    def doRead(self) -> object:
        self.reads += 1
        if not self.sock.recv(100):
            return main.CONNECTION_DONE
        if self.fail:
            raise ZeroDivisionError("reader failed")
        return None

    def connectionLost(self, reason: Failure) -> None:
        self.lost.append(reason)


class FastDispatchTests(SynchronousTestCase):
    """fast_dispatch on a fresh epoll reactor (not the one the tests run on)."""

    skip = None if EPollReactor is not None else "no epoll reactor here"

    def reactor(self) -> Any:
        fresh = EPollReactor()
        for name in ("_poller", "_selectables", "_doReadOrWrite", "_disconnectSelectable"):
            self.assertTrue(hasattr(fresh, name), f"EPollReactor.{name} is gone")
        self.addCleanup(fresh._poller.close)
        self.addCleanup(fresh.waker.connectionLost, None)
        return fresh

    def test_events_handled_errors_logged(self) -> None:
        """Each ready reader is read; one that raises is logged and dropped, EOF disconnects."""
        fresh = self.reactor()
        self.assertTrue(_twisted.fast_dispatch(fresh))
        self.assertTrue(_twisted.fast_dispatch(fresh))  # once is enough, twice is harmless
        pairs = [socket.socketpair() for _ in range(2)]
        for a, b in pairs:
            self.addCleanup(a.close)
            self.addCleanup(b.close)
        good, bad = _Reader(pairs[0][0]), _Reader(pairs[1][0], fail=True)
        fresh.addReader(bad)
        fresh.addReader(good)
        for _a, b in pairs:
            b.send(b"x")
        fresh.doIteration(1)
        self.assertEqual((good.reads, bad.reads), (1, 1))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        # The failing reader was disconnected by the reactor, as Twisted does.
        self.assertNotIn(bad, fresh.getReaders())
        pairs[0][1].send(b"y")
        fresh.doIteration(1)
        self.assertEqual(good.reads, 2)
        pairs[0][1].shutdown(socket.SHUT_WR)  # a plain read event, then EOF
        fresh.doIteration(1)
        self.assertEqual(good.reads, 3)
        self.assertTrue(good.lost[0].check(ConnectionDone))
        self.assertNotIn(good, fresh.getReaders())
        fresh.doIteration(0)  # nothing to do, no error

    def test_other_reactors_untouched(self) -> None:
        """Any reactor but Twisted's epoll reactor is left as it is."""
        self.assertFalse(_twisted.fast_dispatch(object()))


class _PingPong(_Reader):
    """A reader that writes its own next byte while *more()* says so, then calls *done*."""

    def __init__(self, sock: socket.socket, peer: socket.socket, more: Any) -> None:
        super().__init__(sock)
        self.peer = peer
        self.more = more
        self.done: Any = None

    def doRead(self) -> object:
        why = super().doRead()
        if self.more(self.reads):
            self.peer.send(b"x")
        elif self.done is not None:
            done, self.done = self.done, None
            done()
        return why


class LeanLoopTests(SynchronousTestCase):
    """The main loop fast_dispatch gives a fresh epoll reactor (run here, not the tests' own)."""

    skip = None if EPollReactor is not None else "no epoll reactor here"

    def reactor(self) -> Any:
        fresh = EPollReactor()
        for name in ("_started", "_justStopped", "_newTimedCalls", "_pendingTimedCalls"):
            self.assertTrue(hasattr(fresh, name), f"ReactorBase.{name} is gone")
        self.assertIsInstance(fresh._pendingTimedCalls, list)
        self.assertIsInstance(fresh._newTimedCalls, list)
        self.addCleanup(fresh._poller.close)
        self.addCleanup(fresh.waker.connectionLost, None)
        return fresh

    def pingpong(self, fresh: Any, more: Any) -> _PingPong:
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        reader = _PingPong(a, b, more)
        fresh.addReader(reader)
        b.send(b"x")
        return reader

    def test_everything_runs_in_fewer_turns(self) -> None:
        """Events, timed calls, calls from handlers and from threads all run, and stop()
        stops; runUntilCurrent runs when something is due, not once per event."""
        fresh = self.reactor()
        turns = [0]
        run_due = fresh.runUntilCurrent

        def counted() -> None:
            turns[0] += 1
            run_due()

        fresh.runUntilCurrent = counted
        self.assertTrue(_twisted.fast_dispatch(fresh))
        happened: list[str] = []
        guard = fresh.callLater(30, fresh.stop)  # a bug must not hang the suite
        at_timed: list[int] = []

        def timed() -> None:
            happened.append("timed")
            at_timed.append(reader.reads)

        fresh.callLater(0.01, timed)
        # Events flow until the timed call has run (it must, between them: a bound
        # ends a loop that never runs it) and for 2000 reads at least.
        reader = self.pingpong(
            fresh, lambda reads: reads < 2000 or (not happened and reads < 2_000_000)
        )

        def from_thread() -> None:
            happened.append("thread")
            fresh.stop()

        def later() -> None:
            happened.append("later")
            threading.Thread(target=fresh.callFromThread, args=(from_thread,)).start()

        reader.done = lambda: fresh.callLater(0, later)
        fresh.run(installSignalHandlers=False)
        self.assertTrue(guard.active(), "the guard stopped the reactor")
        guard.cancel()
        self.assertGreaterEqual(reader.reads, 2000)
        self.assertEqual(happened, ["timed", "later", "thread"])
        self.assertLess(at_timed[0], 2_000_000, "the timed call waited for the events to end")
        self.assertLess(turns[0], 100, f"{turns[0]} turns for {reader.reads} events")

    def test_crash_ends_the_loop(self) -> None:
        """crash() from an event handler ends run() at once."""
        fresh = self.reactor()
        self.assertTrue(_twisted.fast_dispatch(fresh))
        guard = fresh.callLater(30, fresh.crash)
        reader = self.pingpong(fresh, lambda reads: reads < 50)
        reader.done = fresh.crash
        fresh.run(installSignalHandlers=False)
        self.assertTrue(guard.active(), "the guard crashed the reactor")
        guard.cancel()
        self.assertEqual(reader.reads, 50)
        fresh.disconnectAll()

    def test_names_missing(self) -> None:
        """A reactor without the names keeps its main loop."""
        bare = SimpleNamespace(runUntilCurrent=None)
        self.assertFalse(_twisted._lean_main_loop(bare, lambda timeout: None))
        self.assertFalse(hasattr(bare, "mainLoop"))
