"""
The reuse-port groups of ``--workers``: where each socket sits in a worker,
the group bound beside a listener's socket (the kernel's rules checked), and
a burst of long connections spread over two live workers.
"""

from __future__ import annotations

import errno
import os
import re
import select
import signal
import socket
import sys

from twisted.internet import error
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from netproto._listen._slots import Slots, reuse_port_group, reuses_port
from netproto._listen._stream import ReusePortTCP
from netproto._listen._workers import WorkerPlan, WorkerSocket
from netproto.limits import Limits
from tests._helpers import root_skip_reason
from tests.test_listen_supervisor_live import SERVING, all_metrics, start, worker_pids
from tests.test_tap_live import (
    _LAUNCHER,
    TWISTD,
    Twistd,
    free_port,
    tcp_exchange,
    udp_exchange,
)


class SlotsTests(SynchronousTestCase):
    """Every worker sees every socket at the same descriptor, and serves its own."""

    def test_layout(self) -> None:
        """A shared listener, a group of three, a shared one: worker 2 serves the shared
        ones and the second of the group, and closes the first and third of it."""
        slots = Slots([1, 3, 1], first=3)
        self.assertEqual(list(slots.positions(0)), [3])
        self.assertEqual(list(slots.positions(1)), [4, 5, 6])
        self.assertEqual(list(slots.positions(2)), [7])
        self.assertEqual([slots.served(i, 2) for i in range(3)], [3, 5, 7])
        self.assertEqual(slots.unused(2), (4, 6))
        self.assertEqual(slots.unused(1), (5, 6))
        self.assertEqual(Slots([1, 1]).unused(1), ())

    def test_plan_carries_unused(self) -> None:
        """The descriptors to close travel in the plan."""
        plan = WorkerPlan(
            worker=1,
            workers=2,
            limits=Limits(),
            options={},
            sockets=(WorkerSocket("echo", "--echo=7", "TCP port 7 (IPv4)", 3),),
            unused=(4,),
        )
        self.assertEqual(WorkerPlan.from_json(plan.to_json()).unused, (4,))


def _listener(family: int, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, 0))
    sock.listen(50)
    return sock


class GroupTests(SynchronousTestCase):
    """The sockets bound beside a listener's socket: its address, its family, one group."""

    def test_group_shares_connections(self) -> None:
        """Two more sockets on the first one's port (IPv4, and IPv6 only): 60 connections
        from distinct source ports are spread over all three, none refused."""
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            first = _listener(family, host)
            self.addCleanup(first.close)
            self.assertTrue(reuses_port(first.fileno()))
            more = reuse_port_group(first.fileno(), 2, 50)
            for sock in more:
                self.addCleanup(sock.close)
                self.assertEqual(sock.getsockname()[:2], first.getsockname()[:2])
                if family == socket.AF_INET6:
                    v6only = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
                    self.assertEqual(v6only, 1)
            clients = []
            for _ in range(60):
                client = socket.create_connection(first.getsockname()[:2], timeout=10)
                self.addCleanup(client.close)
                clients.append(client)
            taken = []
            for sock in (first, *more):
                sock.setblocking(False)
                count = 0
                while True:
                    try:
                        conn, _ = sock.accept()
                    except BlockingIOError:
                        break
                    conn.close()
                    count += 1
                taken.append(count)
            self.assertEqual(sum(taken), 60)
            # Each socket gets about 20 of 60 (binomial): none gets none.
            self.assertTrue(all(taken), taken)

    def test_plain_socket_is_no_group(self) -> None:
        """A socket bound without SO_REUSEPORT is not the first of a group, and no
        socket can be bound beside it."""
        plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(plain.close)
        plain.bind(("127.0.0.1", 0))
        plain.listen(5)
        self.assertFalse(reuses_port(plain.fileno()))
        with self.assertRaises(OSError):
            reuse_port_group(plain.fileno(), 1, 5)

    def test_other_uid_cannot_join(self) -> None:
        """A group bound as root: a process of another uid (nobody, as after --uid) cannot
        bind into it (nor bind the port at all), with or without SO_REUSEPORT."""
        reason = root_skip_reason()
        if reason:
            self.skipTest(reason)
        first = _listener(socket.AF_INET, "127.0.0.1")
        self.addCleanup(first.close)
        for sock in reuse_port_group(first.fileno(), 1, 50):
            self.addCleanup(sock.close)
        port = first.getsockname()[1]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child reports through the pipe)
            outcome = b""
            try:
                os.setgid(65534)
                os.setuid(65534)
                for reuse in (1, 0):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, reuse)
                    try:
                        sock.bind(("127.0.0.1", port))
                        outcome += b"joined "
                    except OSError as exc:
                        outcome += f"{exc.errno} ".encode()
            finally:
                os.write(write, outcome)
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        with os.fdopen(read, "rb") as pipe:
            outcome = pipe.read().decode()
        self.assertEqual(outcome.split(), [str(98), str(98)])  # EADDRINUSE twice


class ExclusiveTests(SynchronousTestCase):
    """The first socket of a group never joins another process's group."""

    def test_second_group_refused(self) -> None:
        """A port listened on with SO_REUSEPORT (as a running ``--workers`` instance of the
        same user does): binding the first socket of a new group there fails, address in
        use, as without workers; once it is closed, the port can be bound."""
        reactor = MemoryReactor()
        taken = _listener(socket.AF_INET, "127.0.0.1")
        number = taken.getsockname()[1]
        with self.assertRaises(error.CannotListenError) as caught:
            ReusePortTCP(reactor).listenTCP(number, Factory(), interface="127.0.0.1")
        self.assertEqual(caught.exception.socketError.errno, errno.EADDRINUSE)
        taken.close()
        port = ReusePortTCP(reactor).listenTCP(number, Factory(), interface="127.0.0.1")
        self.addCleanup(port.socket.close)
        self.assertTrue(reuses_port(port.fileno()))
        self.assertEqual(len(reuse_port_group(port.fileno(), 1, 5)), 1)


class InheritedTests(SynchronousTestCase):
    """A socket systemd passed is shared by the workers, whatever its options."""

    def setUp(self) -> None:
        if TWISTD is None:
            self.skipTest("twistd is not installed")

    def test_passed_reuse_port_socket_shared(self) -> None:
        """A TCP and a UDP socket passed with SO_REUSEPORT set (``ReusePort=yes`` in a
        socket unit): no group is bound beside them, both workers serve them."""
        port = free_port()
        tcp = _listener(socket.AF_INET, "127.0.0.1")
        self.addCleanup(tcp.close)
        udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.addCleanup(udp.close)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        udp.bind(("::1", port))
        server = Twistd(
            "--echo=systemd:domain=INET:index=0",
            "--echo=systemd:domain=INET6:name=echo-udp",
            "--workers=2",
            listeners=2,
            prefix=(sys.executable, "-c", _LAUNCHER, str(tcp.fileno()), str(udp.fileno()), "--"),
            pass_fds=(tcp.fileno(), udp.fileno()),
        )
        self.addCleanup(server.stop)
        server.wait_for(lambda text: len(SERVING.findall(text)) >= 2, "serving with workers")
        self.assertIn("netproto: 2 workers serve echo on 2 sockets\n", server.text())
        for n in range(10):
            data = b"%d" % n
            self.assertEqual(tcp_exchange("127.0.0.1", tcp.getsockname()[1], data), data)
        self.assertEqual(udp_exchange("::1", port, b"udp"), b"udp")


class BurstTests(SynchronousTestCase):
    """A burst of long connections is shared by the workers whatever the scheduler does."""

    def setUp(self) -> None:
        if TWISTD is None:
            self.skipTest("twistd is not installed")

    def test_burst_shared_while_one_worker_is_busy(self) -> None:
        """
        100 connections opened at once while worker 1 cannot run (SIGSTOP, as a worker
        busy elsewhere or not yet scheduled): each of the two workers still serves at least
        a quarter of them once it runs. On a socket shared by the workers the one that
        runs would take them all.
        """
        echo, port = free_port(), free_port()
        server = start(
            f"--echo=tcp:{echo}:interface=127.0.0.1", f"--metrics={port}", workers=2, listeners=2
        )
        self.addCleanup(server.stop)
        self.assertIn("each of the 1 TCP ones bound once per worker (SO_REUSEPORT)", server.text())
        busy = worker_pids(server)[1]
        os.kill(busy, signal.SIGSTOP)
        conns = []
        try:
            for _ in range(100):
                conn = socket.create_connection(("127.0.0.1", echo), timeout=30)
                self.addCleanup(conn.close)
                conn.sendall(b"!")
                conns.append(conn)
            # Let the running worker answer every connection it can (on a shared socket:
            # all of them) until half a second passes without an answer.
            waiting = list(conns)
            for _ in range(40):
                ready, _, _ = select.select(waiting, [], [], 0.5)
                if not ready:
                    break
                for conn in ready:
                    self.assertEqual(conn.recv(10), b"!")
                    waiting.remove(conn)
        finally:
            os.kill(busy, signal.SIGCONT)
        for conn in waiting:
            self.assertEqual(conn.recv(10), b"!")
        text = all_metrics(port)
        shares = {
            int(worker): int(float(count))
            for worker, count in re.findall(
                r'netproto_worker_requests_total\{service="echo",transport="tcp",'
                r'worker="(\d)"\} ([0-9.e+]+)',
                text,
            )
        }
        self.assertEqual(sum(shares.values()), 100, text)
        # Hashed over two sockets: about 50 each (binomial, below 25 once in 10**6).
        self.assertGreaterEqual(min(shares.values()), 25, shares)
        self.assertEqual(len(SERVING.findall(server.text())), 2)
