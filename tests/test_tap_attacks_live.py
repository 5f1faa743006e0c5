"""
The attacks of issue 10, replayed on loopback against a service in a process
of its own: descriptors never pass the connection cap plus a small constant.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import TestCase

ROOT = Path(__file__).resolve().parent.parent

FD_HEADROOM = 1
"""Descriptors above the cap while accepting: the one just accepted, refused at once."""


def _attack_server(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests._attack_server", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _expect(proc: subprocess.Popen[str], key: str) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith(key + " "):
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"expected {key}, got {line!r}; stderr: {err[-2000:]}")
    return int(line.split()[1])


class RefusedCloseTests(TestCase):
    """Refused connections are closed before the next accept."""

    def test_fds_stay_within_cap(self) -> None:
        """300 connections queued at once against a cap of 16: at most cap + 1 extra fds."""
        cap, total = 16, 300
        proc = _attack_server("fds", str(cap), str(total))
        # Cleanups run last first: kill (if still running), then reap.
        self.addCleanup(lambda: proc.wait(30))
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        port = _expect(proc, "PORT")
        clients: list[socket.socket] = []
        self.addCleanup(lambda: [c.close() for c in clients])
        # Stopped, the server accepts nothing: every connection waits in the
        # backlog and one accept batch meets them all when it resumes.
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            for _ in range(total):
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        peak = _expect(proc, "PEAK")
        self.assertLessEqual(peak, cap + FD_HEADROOM)
        self.assertGreaterEqual(peak, cap)  # the admitted ones were really open


def _listen_backlog(port: int) -> int | None:
    """The backlog of the TCP listener on *port*, as ``ss`` shows it (its Send-Q)."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "LISTEN":
            return int(fields[2])
    return None


class BacklogTests(TestCase):
    """``--listen-backlog`` reaches the kernel, for bare ports and endpoint descriptions."""

    def serve(self, *args: str) -> list[int]:
        from twisted.internet import reactor

        from netproto.tap import Options, makeService

        config = Options()
        config.parseOptions(list(args))
        service = makeService(config, reactor)
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        return [
            child.listening_port()  # type: ignore[attr-defined]
            for child in service  # type: ignore[attr-defined]
            if getattr(child, "port", None) is not None and child.listening_port()
        ]

    def setUp(self) -> None:
        if shutil.which("ss") is None:
            self.skipTest("ss (iproute2) is not installed")

    def test_description_gets_option(self) -> None:
        """``tcp:0:interface=127.0.0.1`` with --listen-backlog=700 listens with 700."""
        (port,) = self.serve("--echo=tcp:0:interface=127.0.0.1", "--listen-backlog=700")
        self.assertEqual(_listen_backlog(port), 700)

    def test_description_keeps_its_own(self) -> None:
        """A description naming its backlog keeps it."""
        (port,) = self.serve("--echo=tcp:0:interface=127.0.0.1:backlog=33")
        self.assertEqual(_listen_backlog(port), 33)

    def test_default_and_clamp(self) -> None:
        """The default is 1024 (or somaxconn if smaller); a larger request is clamped to it."""
        from netproto._listen._backlog import system_maximum

        top = system_maximum()
        (port,) = self.serve("--echo=tcp:0:interface=127.0.0.1")
        self.assertEqual(_listen_backlog(port), min(1024, top))
        (port,) = self.serve("--echo=tcp:0:interface=127.0.0.1", f"--listen-backlog={top + 5}")
        self.assertEqual(_listen_backlog(port), top)

    def test_bare_port(self) -> None:
        """A bare port's TCP sockets (IPv4 and IPv6) listen with the option's backlog."""
        ports = self.serve("--echo=0", "--listen-backlog=300")
        tcp = [b for b in map(_listen_backlog, ports) if b is not None]
        self.assertTrue(tcp)
        self.assertEqual(set(tcp), {300})


class MetricsBoundsTests(TestCase):
    """Idle connections to --metrics cannot starve the services."""

    def test_capped(self) -> None:
        """20 idle connections to metrics: 8 stay, 12 are closed at once; echo still answers."""
        from netproto._listen._capped import METRICS_MAX_CONNECTIONS
        from tests._servers import closed_by_peer, deferred, wait_until

        ports = BacklogTests.serve(
            self,  # type: ignore[arg-type]
            "--echo=tcp:0:interface=127.0.0.1",
            "--metrics=tcp:0:interface=127.0.0.1",
        )
        echo, metrics = ports
        # Blocking sockets: closed_by_peer peeks with MSG_DONTWAIT.
        idle = [socket.create_connection(("127.0.0.1", metrics)) for _ in range(20)]
        self.addCleanup(lambda: [s.close() for s in idle])

        async def check() -> None:
            await wait_until(
                lambda: sum(map(closed_by_peer, idle)) == 20 - METRICS_MAX_CONNECTIONS, 30
            )
            client = socket.create_connection(("127.0.0.1", echo), timeout=30)
            self.addCleanup(client.close)
            client.setblocking(False)
            client.send(b"still here")
            got = b""

            def echoed() -> bool:
                nonlocal got
                try:
                    got += client.recv(100)
                except BlockingIOError:
                    pass
                return got == b"still here"

            await wait_until(echoed, 30)
            # The ones still open are the first eight, served as usual.
            self.assertEqual([closed_by_peer(s) for s in idle[:8]], [False] * 8)

        return deferred(check())


class ExhaustionTests(TestCase):
    """Out of descriptors: connections wait in the backlog, the log gets a summary."""

    def test_emfile_episode(self) -> None:
        """20 clients while every fd is taken: all are served once fds free; <= 3 log lines."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests._attack_server", "emfile"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Cleanups run last first: kill (if still running), then reap.
        self.addCleanup(lambda: proc.wait(30))
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        port = _expect(proc, "PORT")
        clients = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(20)]
        self.addCleanup(lambda: [c.close() for c in clients])
        for i, client in enumerate(clients):
            client.sendall(b"%03d" % i)
        for i, client in enumerate(clients):
            got = b""
            while len(got) < 3:
                chunk = client.recv(3 - len(got))
                self.assertTrue(chunk, f"client {i} was closed or reset, not served")
                got += chunk
            self.assertEqual(got, b"%03d" % i)
        assert proc.stdin is not None
        proc.stdin.write("report\n")
        proc.stdin.flush()
        errors = _expect(proc, "ERRORS")
        lines = _expect(proc, "LINES")
        self.assertGreaterEqual(errors, 5)
        self.assertLessEqual(lines, 3, proc.stdout.read() if proc.stdout else "")
        self.assertGreaterEqual(lines, 1)


class FdLimitTests(TestCase):
    """twistd under a low RLIMIT_NOFILE: caps fitted at start, refusals instead of EMFILE."""

    def run_twistd(self, soft: int, hard: int, *args: str) -> tuple[object, int]:
        import tests.test_tap_live as live

        if live.TWISTD is None:
            self.skipTest("twistd is not installed")
        prefix = (sys.executable, "-c", _PRLIMIT % (soft, hard))
        server = live.Twistd(*args, listeners=1, prefix=prefix)
        self.addCleanup(server.stop)
        match = re.search(r"\(port (\d+)\)", server.text())
        assert match is not None, server.text()
        return server, int(match.group(1))

    def test_clamped_and_refused(self) -> None:
        """256 fds: max-connections lowered (one warning); 300 clients: refused, no EMFILE."""
        server, port = self.run_twistd(256, 256, "--echo=tcp:0:interface=127.0.0.1")
        text = server.text()  # type: ignore[attr-defined]
        found = re.search(r"--max-connections lowered from 4096 to (\d+)", text)
        self.assertIsNotNone(found, text)
        assert found is not None
        fitted = int(found.group(1))
        self.assertLess(fitted, 256)
        clients: list[socket.socket] = []
        self.addCleanup(lambda: [c.close() for c in clients])
        for _ in range(300):
            try:
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=30))
            except ConnectionResetError:
                pass  # refused before connect() returned
        served = 0
        for client in clients:
            try:
                client.sendall(b"x")
                served += client.recv(1) == b"x"
            except ConnectionResetError:
                pass  # refused: over the fitted cap
        self.assertEqual(served, fitted)
        text = server.text()  # type: ignore[attr-defined]
        self.assertNotIn("EMFILE", text)
        self.assertNotIn("out of file descriptors", text)

    def test_soft_raised(self) -> None:
        """Soft 256 under hard 8192: raised at start, max-connections kept."""
        server, _ = self.run_twistd(256, 8192, "--echo=tcp:0:interface=127.0.0.1")
        pid = server.process.pid  # type: ignore[attr-defined]
        limits = Path(f"/proc/{pid}/limits").read_text()
        (line,) = [x for x in limits.splitlines() if x.startswith("Max open files")]
        self.assertGreater(int(line.split()[3]), 4096, line)
        self.assertIn("file descriptor limit raised from 256", server.text())  # type: ignore[attr-defined]


_PRLIMIT = (
    "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d)); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)
"""Run the rest of the command line under a given RLIMIT_NOFILE (prlimit without util-linux)."""


class PrefixNamespaceTests(TestCase):
    """One /64 is one peer, with real IPv6 sources in a private namespace."""

    def test_one_64_capped(self) -> None:
        """Ten addresses of one /64 against a per-peer cap of 4: 4 in, 6 refused; another /64 in."""
        from tests._helpers import root_skip_reason, tool_skip_reason

        reason = root_skip_reason() or tool_skip_reason("unshare") or tool_skip_reason("ip")
        if reason:
            self.skipTest(reason)
        result = subprocess.run(
            ["unshare", "-n", sys.executable, "-m", "tests._attack_server", "prefix"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertEqual(result.stdout.split(), ["ADMITTED", "5", "REFUSED", "6", "OTHER", "1"])
