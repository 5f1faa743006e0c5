"""
Memory per stalled writer, bounded: a peer that sends and never reads fills
its connection's queue to ``write_high_water`` (at most one more read past it,
one large read while the budget holds nothing) and no further; past
``buffer_budget`` queued over the service, every read pauses until the queues
drain, so later attackers queue nothing at all.
Real sockets on loopback, the service in this process.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet import task
from twisted.trial.unittest import TestCase

from netproto._twisted import queued_bytes
from netproto.echo import EchoFactory
from netproto.limits import Limits
from tests._servers import deferred, wait_until

reactor: Any = _reactor

HIGH_WATER = 16384
BUDGET = 4 * 2 * HIGH_WATER


class _Stallers:
    """Client sockets that send as fast as they can and never read."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets: list[socket.socket] = []
        self.blob = b"x" * 65536
        self.loop = task.LoopingCall(self.pump)
        self.loop.start(0.002)

    def add(self, n: int) -> None:
        for _ in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", self.port))
            s.setblocking(False)
            self.sockets.append(s)

    def pump(self) -> None:
        for s in self.sockets:
            try:
                s.send(self.blob)
            except OSError:
                pass

    def close(self) -> None:
        if self.loop.running:
            self.loop.stop()
        for s in self.sockets:
            s.close()
        self.sockets = []


class BudgetTests(TestCase):
    """``write_high_water`` and ``buffer_budget`` under stalled writers."""

    def test_stalled_writers_bounded(self) -> None:
        """8 stallers fill the budget; 20 more queue nothing; an honest client waits, is served."""
        factory = EchoFactory(
            reactor,
            Limits(
                write_high_water=HIGH_WATER,
                buffer_budget=BUDGET,
                write_stall_timeout=0,
                idle_timeout=0,
                max_connections_per_peer=0,
            ),
        )
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        stallers = _Stallers(port.getHost().port)
        self.addCleanup(stallers.close)

        def queued() -> list[int]:
            return [queued_bytes(c.transport) or 0 for c in factory.watch.connections()]  # type: ignore[attr-defined]

        async def run() -> None:
            stallers.add(8)
            await wait_until(lambda: factory.budget.over, 30)
            first = sum(queued())
            # One of the 8 may hold one large read (256 KiB: nothing was held
            # by the budget yet when it read); from then on the budget holds
            # its queue, so each of the others holds at most the high-water
            # mark plus one read past it.
            *others, largest = sorted(queued())
            self.assertLessEqual(largest, 256 << 10)
            self.assertLessEqual(max(others), 2 * HIGH_WATER + 65536 // 4)
            self.assertLessEqual(first, (256 << 10) + 7 * 2 * HIGH_WATER)
            stallers.add(20)
            await wait_until(lambda: len(factory.watch) == 28, 30)
            honest = socket.create_connection(("127.0.0.1", port.getHost().port))
            self.addCleanup(honest.close)
            honest.sendall(b"hello")
            await wait_until(lambda: len(factory.watch) == 29, 30)
            # Nobody admitted while over budget has read a byte.
            self.assertEqual(sum(queued()), first)
            self.assertTrue(factory.budget.over)
            stallers.close()  # the attackers leave: their queues are freed
            got = b""

            def echoed() -> bool:
                nonlocal got
                try:
                    got += honest.recv(100, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    pass
                return got == b"hello"

            await wait_until(echoed, 30)
            self.assertFalse(factory.budget.over)
            self.assertEqual(factory.budget.used, 0)

        return deferred(run())


class ReleaseTests(TestCase):
    """What a lost echo connection held is freed at once, not at the next full collection."""

    def test_freed_without_gc(self) -> None:
        """With the garbage collector off, the protocol and its queue die with the connection."""
        import gc
        import weakref

        factory = EchoFactory(reactor, Limits())
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = socket.create_connection(("127.0.0.1", port.getHost().port))
        self.addCleanup(client.close)
        refs: list[weakref.ref[Any]] = []

        async def run() -> None:
            await wait_until(lambda: len(factory.watch) == 1, 30)
            (protocol,) = factory.watch.connections()
            refs.append(weakref.ref(protocol))
            refs.append(weakref.ref(protocol.transport))  # type: ignore[attr-defined]
            del protocol
            gc.disable()
            self.addCleanup(gc.enable)
            client.close()
            await wait_until(lambda: len(factory.watch) == 0, 30)
            await wait_until(lambda: all(r() is None for r in refs), 5)

        return deferred(run())


class TrimmerTests(TestCase):
    """:class:`netproto._service.Trimmer`: trims once an episode has ended."""

    def test_episodes(self) -> None:
        """A drop of 32 connections or 1 MiB queued from the peak trims; steady load does not."""
        from netproto._service import Trimmer

        calls: list[int] = []
        trimmer = Trimmer(trim=lambda: calls.append(1) or True)
        for n in (10, 40, 1000, 990, 980):
            self.assertFalse(trimmer.observe(n, 0))
        self.assertTrue(trimmer.observe(100, 0))
        self.assertFalse(trimmer.observe(100, 0))
        self.assertFalse(trimmer.observe(100, 4 << 20))
        self.assertTrue(trimmer.observe(100, 1 << 20))
        self.assertEqual(len(calls), 2)
