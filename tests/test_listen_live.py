"""
What ``twistd netproto`` says about the sockets it binds, run as a user runs
it: the ports the kernel chose for port 0, UNIX sockets created with the
umask's mode, one line for a port in use. Loopback only (a bare port listens
on every address, but nothing is sent anywhere else).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from tests.test_tap_live import CTIME, Twistd, _skip, udp_exchange


def served(text: str) -> list[tuple[str, str]]:
    """The (service, where) of every ``netproto: SERVICE on WHERE`` start-up line."""
    return re.findall(r"netproto: (\w+) on (.+)", text)


class BoundPortTests(SynchronousTestCase):
    """Port 0 asks the kernel for a free port: the log gives the one bound."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def test_port_zero_reported(self) -> None:
        """
        ``--echo=udp:0:...``, ``--daytime=tcp:0:...`` and a bare ``--daytime=0``:
        every start-up line names the port bound, never "port 0", and each
        port named answers.
        """
        server = Twistd(
            "--echo=udp:0:interface=127.0.0.1",
            "--daytime=tcp:0:interface=127.0.0.1",
            "--daytime=0",
            listeners=6,
        )
        self.addCleanup(server.stop)
        server.wait_for(lambda text: len(served(text)) >= 6, "reporting its ports")
        self.assertNotIn("port 0", server.text())
        ports: dict[str, int] = {}
        for _service, where in served(server.text()):
            for name, pattern in (
                ("udp", r"UDP port (\d+) on 127\.0\.0\.1"),
                ("tcp", r"tcp:0:interface=127\.0\.0\.1 \(port (\d+)\)"),
                ("127.0.0.1", r"TCP port (\d+) \(IPv4\)"),
                ("::1", r"TCP port (\d+) \(IPv6\)"),
            ):
                match = re.fullmatch(pattern, where)
                if match:
                    ports[name] = int(match.group(1))
        self.assertEqual(sorted(ports), sorted(["udp", "tcp", "127.0.0.1", "::1"]), server.text())
        self.assertEqual(udp_exchange("127.0.0.1", ports["udp"], b"zero"), b"zero")
        for host, port in (
            ("127.0.0.1", ports["tcp"]),
            ("127.0.0.1", ports["127.0.0.1"]),
            ("::1", ports["::1"]),
        ):
            with socket.create_connection((host, port), timeout=10) as conn:
                self.assertRegex(conn.recv(100), CTIME)


class UnixSocketModeTests(SynchronousTestCase):
    """``unix:PATH`` sockets are not world-connectable unless asked."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def test_umask_and_mode(self) -> None:
        """
        Without ``mode=``, the socket file gets 0666 less twistd's umask
        (``--umask=027``: 0640), not Twisted's 0666; ``mode=600`` is honoured;
        the owner can still connect.
        """
        work = tempfile.mkdtemp(prefix="netproto-unix-")
        self.addCleanup(shutil.rmtree, work, True)
        plain, chosen = os.path.join(work, "plain.sock"), os.path.join(work, "chosen.sock")
        server = Twistd(
            f"--echo=unix:{plain}",
            f"--daytime=unix:{chosen}:mode=600",
            listeners=2,
            twistd_args=("-n", "--pidfile=", "--umask=027"),
        )
        self.addCleanup(server.stop)
        self.assertEqual(stat.S_IMODE(os.stat(plain).st_mode), 0o640)
        self.assertEqual(stat.S_IMODE(os.stat(chosen).st_mode), 0o600)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
            unix.settimeout(10)
            unix.connect(plain)
            unix.sendall(b"mine")
            unix.shutdown(socket.SHUT_WR)
            self.assertEqual(unix.recv(100), b"mine")
