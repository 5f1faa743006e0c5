"""``twistd netproto --workers N`` in a subprocess: serve, restart, stop, budgets, metrics."""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests._helpers import root_skip_reason, tool_skip_reason
from tests.test_tap_live import (
    _LAUNCHER,
    CTIME,
    TWISTD,
    Twistd,
    assert_loops_bounded,
    forged_loops,
    free_port,
    metrics,
    self_signed,
    tcp_exchange,
    udp_exchange,
)

SERVING = re.compile(r"netproto: worker (\d+) \(pid (\d+)\) serving")


def _skip() -> str | None:
    if TWISTD is None:
        return "twistd is not installed"
    return None


def start(*args: str, workers: int, listeners: int) -> Twistd:
    """A twistd with *workers* workers, once every worker said it serves (1: no workers)."""
    server = Twistd(*args, f"--workers={workers}", listeners=listeners)
    if workers > 1:
        server.wait_for(lambda text: len(SERVING.findall(text)) >= workers, "serving with workers")
    return server


def worker_pids(server: Twistd) -> dict[int, int]:
    """The latest pid of each worker, from the log."""
    pids: dict[int, int] = {}
    for worker, pid in SERVING.findall(server.text()):
        pids[int(worker)] = int(pid)
    return pids


def alive(pid: int) -> bool:
    """Whether *pid* is a live process (not gone, not a zombie)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def children(pid: int) -> list[int]:
    """The processes whose parent is *pid* (the workers and the standby)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def all_metrics(port: int) -> str:
    """The whole exposition text."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text: str = response.read().decode()
    return text


class WorkersServingTests(SynchronousTestCase):
    """Two workers serve TCP and UDP, IPv4 and IPv6; the metrics add up over the workers."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def test_serve_and_count(self) -> None:
        """Daytime and echo on every transport; 20 connections counted once each, in total
        and by worker; the start-up line says how many workers serve what."""
        daytime, echo, port = free_port(), free_port(), free_port()
        server = start(
            f"--daytime={daytime}",
            f"--echo={echo}",
            f"--metrics={port}",
            "--udp-rate=1000",
            "--udp-burst=1000",
            workers=2,
            listeners=9,
        )
        self.addCleanup(server.stop)
        self.assertIn("netproto: 2 workers serve daytime, echo on 8 sockets", server.text())
        for host in ("127.0.0.1", "::1"):
            self.assertRegex(tcp_exchange(host, daytime, b""), CTIME)
            self.assertRegex(udp_exchange(host, daytime, b"x"), CTIME)
            self.assertEqual(
                udp_exchange(host, echo, b"udp " + host.encode()), b"udp " + host.encode()
            )
        for n in range(20):
            data = f"echo {n}".encode()
            self.assertEqual(tcp_exchange("127.0.0.1", echo, data), data)
        values = metrics(port)
        self.assertEqual(values["tcp_connections{echo}"], 20)
        self.assertEqual(values["udp_replies_sent{echo}"], 2)
        self.assertEqual(values["tcp_connections{daytime}"], 2)
        text = all_metrics(port)
        self.assertRegex(text, r"\nnetproto_workers 2(\.0)?\n")
        self.assertRegex(text, r'\nnetproto_worker_up\{worker="1"\} 1(\.0)?\n')
        self.assertRegex(text, r'\nnetproto_worker_up\{worker="2"\} 1(\.0)?\n')
        by_worker = [
            int(float(count))
            for count in re.findall(
                r'netproto_worker_requests_total\{service="echo",transport="tcp",'
                r'worker="\d"\} ([0-9.e+]+)',
                text,
            )
        ]
        self.assertEqual(sum(by_worker), 20)


class WorkersAccessTests(SynchronousTestCase):
    """--allow/--deny hold in every worker, over TCP and UDP."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def test_deny_holds_with_workers(self) -> None:
        """127.0.0.1 denied, ::1 allowed: nothing for the one, daytime for the other."""
        daytime, port = free_port(), free_port()
        server = start(
            f"--daytime={daytime}",
            f"--metrics={port}",
            "--deny=127.0.0.1",
            workers=2,
            listeners=5,
        )
        self.addCleanup(server.stop)
        for _ in range(6):
            try:
                answer = tcp_exchange("127.0.0.1", daytime, b"")
            except ConnectionResetError:  # refused connections are aborted
                answer = b""
            self.assertEqual(answer, b"")
        self.assertRegex(tcp_exchange("::1", daytime, b""), CTIME)
        self.assertRegex(udp_exchange("::1", daytime, b"x"), CTIME)
        values = metrics(port)
        self.assertEqual(values["tcp_refused_access{daytime}"], 6)


class SupervisionTests(SynchronousTestCase):
    """A killed worker comes back while the others keep serving; SIGTERM stops them all."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def test_kill_restart_and_stop(self) -> None:
        """kill -9 of a worker: the standby takes over (or it is restarted after 0.2 s); a
        client connecting every 10 ms in the meantime is never refused; then SIGTERM ends
        the supervisor, every worker and the standby."""
        echo, port = free_port(), free_port()
        server = start(
            f"--echo=tcp:{echo}:interface=127.0.0.1", f"--metrics={port}", workers=2, listeners=2
        )
        self.addCleanup(server.stop)
        before = worker_pids(server)
        os.kill(before[1], signal.SIGKILL)
        refused = failed = served = 0
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", echo), timeout=5) as conn:
                    conn.sendall(b"ping")
                    conn.shutdown(socket.SHUT_WR)
                    answer = conn.recv(100)
                served += answer == b"ping"
                failed += answer != b"ping"
            except ConnectionRefusedError:
                refused += 1
            except OSError:
                failed += 1  # the one connection the dying worker held
            now = worker_pids(server)
            if now.get(1, before[1]) != before[1] and served >= 20:
                break
            self.assertLess(time.monotonic(), deadline, server.text())
            time.sleep(0.01)
        self.assertEqual(refused, 0)
        self.assertLessEqual(failed, 1)
        # Replaced at once by the standby process, or restarted after 0.2 s.
        self.assertRegex(
            server.text(),
            rf"worker 1 \(pid {before[1]}\) ended \(signal SIGKILL\) after [\d.]+ s; "
            r"(the standby \(pid \d+\) takes over|restarting it in 0\.2 s)",
        )
        self.assertRegex(
            all_metrics(port), r'netproto_worker_restarts_total\{worker="1"\} 1(\.0)?\n'
        )
        pids = children(server.process.pid)
        self.assertGreaterEqual(len(pids), 2)
        self.assertTrue(set(worker_pids(server).values()) <= set(pids))
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(30)
        for pid in pids:
            for _ in range(100):
                if not alive(pid):
                    break
                time.sleep(0.05)
            self.assertFalse(alive(pid), f"worker pid {pid} outlived the supervisor")
        self.assertIn("netproto: every worker stopped", server.text())
        self.assertNotIn("killing it", server.text())

    def test_supervisor_killed(self) -> None:
        """kill -9 of the supervisor: every worker sees its pipe close and exits."""
        echo = free_port()
        server = start(f"--echo=udp:{echo}:interface=127.0.0.1", workers=2, listeners=1)
        self.addCleanup(server.stop)
        pids = children(server.process.pid)
        self.assertGreaterEqual(len(pids), 2)
        server.process.kill()
        server.process.wait(30)
        for pid in pids:
            for _ in range(200):
                if not alive(pid):
                    break
                time.sleep(0.05)
            self.assertFalse(alive(pid), f"worker pid {pid} outlived a killed supervisor")


class WorkerOptionTests(SynchronousTestCase):
    """--workers mistakes are one line and exit status 1."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def run_twistd(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert TWISTD is not None
        return subprocess.run(
            [TWISTD, "-n", "--pidfile=", "netproto", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tempfile.gettempdir(),
        )

    def test_bad_values(self) -> None:
        """A non-number, 0, a budget too small to split, and TLS with workers are refused."""
        port = str(free_port())
        key, cert = self_signed(tempfile.mkdtemp(prefix="netproto-tls-"))
        tls = f"--echo=ssl:{free_port()}:interface=127.0.0.1:privateKey={key}:certKey={cert}"
        cases = {
            ("--workers=many",): "--workers: 'many' is not a whole number or 'auto'",
            ("--workers=0",): "--workers: must be from 1 to 256",
            ("--workers=2", "--udp-burst=1"): "--udp-burst=1 cannot be split between 2 workers",
            ("--workers=2", tls): "a TLS endpoint cannot be shared",
        }
        for args, message in cases.items():
            result = self.run_twistd(f"--echo={port}", *args)
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertIn(message, result.stderr)
            self.assertNotIn("Traceback", result.stderr)


class BudgetTests(SynchronousTestCase):
    """The budgets mean the same with two workers as with one."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def flood(self, workers: int) -> tuple[int, float]:
        """600 datagrams from one socket to UDP echo (burst 40, 2/s); the replies counted."""
        echo, port = free_port(), free_port()
        server = start(
            f"--echo=udp:{echo}:interface=127.0.0.1",
            f"--metrics={port}",
            "--udp-rate=2",
            workers=workers,
            listeners=2,
        )
        self.addCleanup(server.stop)
        began = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            deadline = time.monotonic() + 60
            for batch in range(1, 13):
                # 50 at a time, read by the server before the next (no kernel drops).
                for _ in range(50):
                    sock.sendto(b"flood", ("127.0.0.1", echo))
                while metrics(port)["udp_datagrams_received{echo}"] < 50 * batch:
                    self.assertLess(time.monotonic(), deadline, server.text())
                    time.sleep(0.02)
            elapsed = time.monotonic() - began
            sent = metrics(port)["udp_replies_sent{echo}"]
            sock.settimeout(0.2)
            got = 0
            try:
                while True:
                    sock.recvfrom(100)
                    got += 1
            except TimeoutError:
                pass
        self.assertEqual(got, sent)
        return got, elapsed

    def test_udp_flood(self) -> None:
        """One source gets at most the burst (40) plus the rate over the time, 1 or 2 workers."""
        for workers in (1, 2):
            got, elapsed = self.flood(workers)
            self.assertGreater(got, 0)
            self.assertLessEqual(got, 40 + int(2 * elapsed) + 1, (workers, elapsed))

    def test_peer_burst(self) -> None:
        """40 connections from one address, 10 allowed per peer: at most 10 stay, 2 workers."""
        echo = free_port()
        server = start(
            f"--echo=tcp:{echo}:interface=127.0.0.1",
            "--max-connections-per-peer=10",
            workers=2,
            listeners=1,
        )
        self.addCleanup(server.stop)
        conns = []
        for _ in range(40):
            try:
                conn = socket.create_connection(("127.0.0.1", echo), timeout=10)
            except ConnectionResetError:
                continue  # refused over the cap before connect() returned
            self.addCleanup(conn.close)
            conns.append(conn)
        kept = 0
        for conn in conns:
            try:
                conn.sendall(b"?")
                kept += conn.recv(10) == b"?"
            except OSError as exc:
                self.assertIn(exc.errno, (errno.ECONNRESET, errno.EPIPE))
        self.assertGreater(kept, 0)
        self.assertLessEqual(kept, 10)


class WorkersLoopTests(SynchronousTestCase):
    """Two instances of two workers each: one forged datagram between them stops bouncing."""

    def setUp(self) -> None:
        reason = _skip() or root_skip_reason()
        if reason:
            self.skipTest(reason)

    def test_forged_loop_dies(self) -> None:
        """echo <-> echo and echo <-> daytime loops end within the default burst (40)."""
        launch = lambda *options, listeners: start(*options, workers=2, listeners=listeners)  # noqa: E731
        assert_loops_bounded(self, forged_loops(self, launch, seconds=20))


_PRIVILEGE_SCRIPT = r"""
import json, os, re, socket, subprocess, sys, time
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
# The interpreter may live under a home only root can enter (/root/.pyenv): in this
# private mount namespace, show that directory alone under a world-readable /root.
real = os.path.realpath(sys.argv[2])
if real.startswith("/root/"):
    top = real.split("/")[2]
    os.makedirs("/tmp/np-root", exist_ok=True)
    subprocess.run(f"mount --bind /root /tmp/np-root && mount -t tmpfs -o mode=755 tmpfs /root"
                   f" && mkdir /root/{top} && mount --bind /tmp/np-root/{top} /root/{top}",
                   shell=True, check=True)
twistd = sys.argv[1]
log = open("twistd.log", "wb")
proc = subprocess.Popen([twistd, "-n", "--pidfile=", "--uid", "nobody", "--gid", "nogroup",
                         "netproto", "--echo=7", "--daytime=13", "--workers=2"],
                        stdout=log, stderr=subprocess.STDOUT)
result = {}
try:
    deadline = time.monotonic() + 30
    while len(re.findall(r"worker \d \(pid \d+\) serving", open("twistd.log").read())) < 2:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("twistd did not start:\n" + open("twistd.log").read())
        time.sleep(0.05)
    with socket.create_connection(("127.0.0.1", 13), timeout=5) as c:
        result["daytime_tcp"] = c.recv(100).decode()
    with socket.create_connection(("::1", 7), timeout=5) as c:
        c.sendall(b"seven")
        result["echo_tcp"] = c.recv(100).decode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(b"udp seven", ("127.0.0.1", 7))
        result["echo_udp"] = u.recvfrom(100)[0].decode()
    pids = [proc.pid] + [int(p) for p in re.findall(r"\(pid (\d+)\) serving",
                                                  open("twistd.log").read())]
    result["uids"] = []
    for pid in pids:
        status = open(f"/proc/{pid}/status").read()
        uid = [l for l in status.splitlines() if l.startswith("Uid:")][0].split()[1]
        result["uids"].append(uid)
finally:
    proc.terminate()
    proc.wait(10)
    result["log"] = open("twistd.log").read()
print(json.dumps(result))
"""


class WorkersPrivilegeTests(SynchronousTestCase):
    """Ports 7 and 13 bound as root, served by workers running as nobody (private namespaces)."""

    def setUp(self) -> None:
        reason = _skip() or root_skip_reason() or tool_skip_reason("unshare")
        if reason:
            self.skipTest(reason)

    def test_drop_to_nobody(self) -> None:
        """--uid nobody --workers 2: the supervisor and both workers run as nobody and serve."""
        import json

        assert TWISTD is not None
        nobody = subprocess.run(
            ["id", "-u", "nobody"], capture_output=True, text=True, check=False
        ).stdout.strip()
        work = tempfile.mkdtemp(prefix="netproto-workers-")
        result = subprocess.run(
            [
                "unshare",
                "-n",
                "-m",
                sys.executable,
                "-c",
                _PRIVILEGE_SCRIPT,
                TWISTD,
                sys.executable,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            cwd=work,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        seen: dict[str, Any] = json.loads(result.stdout)
        self.assertRegex(seen["daytime_tcp"].encode(), CTIME)
        self.assertEqual((seen["echo_tcp"], seen["echo_udp"]), ("seven", "udp seven"))
        self.assertEqual(seen["uids"], [nobody] * 3)
        self.assertNotIn("running as root", seen["log"])


class WorkersSystemdTests(SynchronousTestCase):
    """Socket activation with workers: the inherited sockets are shared by the workers."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def test_listen_fds(self) -> None:
        """LISTEN_FDS as systemd sets it: a TCP socket (by index) and a UDP socket (by name)
        serve echo from two workers, the activating datagram included."""
        port = free_port()
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(tcp.close)
        tcp.bind(("127.0.0.1", port))
        tcp.listen(50)
        udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.addCleanup(udp.close)
        udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        udp.bind(("::", port))
        early = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(early.close)
        early.settimeout(30)
        early.sendto(b"the activating datagram", ("127.0.0.1", port))
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
        self.assertEqual(early.recvfrom(100)[0], b"the activating datagram")
        for n in range(10):
            self.assertEqual(tcp_exchange("127.0.0.1", port, b"%d" % n), b"%d" % n)
        data = os.urandom(65527)
        self.assertEqual(udp_exchange("::1", port, data), data)
        self.assertIn("netproto: 2 workers serve echo on 2 sockets", server.text())

    def test_systemd_socket_activate(self) -> None:
        """systemd's own systemd-socket-activate starts twistd on the first connection;
        that connection and the next are echoed by the workers."""
        reason = tool_skip_reason("systemd-socket-activate")
        if reason:
            self.skipTest(reason)
        assert TWISTD is not None
        port = free_port()
        work = tempfile.mkdtemp(prefix="netproto-activate-")
        log = Path(work) / "twistd.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [
                    "systemd-socket-activate",
                    f"--listen=127.0.0.1:{port}",
                    # Twisted reads LISTEN_FDS only with LISTEN_FDNAMES beside it.
                    "--fdname=echo",
                    "--",
                    TWISTD,
                    "-n",
                    "--pidfile=",
                    "netproto",
                    "--echo=systemd:domain=INET:name=echo",
                    "--workers=2",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=work,
                stdin=subprocess.DEVNULL,
            )

        def stop() -> None:
            if process.poll() is None:
                process.terminate()
                process.wait(30)

        self.addCleanup(stop)
        deadline = time.monotonic() + 30
        while "Listening on" not in log.read_text(errors="replace"):
            self.assertIsNone(process.poll(), log.read_text(errors="replace"))
            self.assertLess(time.monotonic(), deadline, log.read_text(errors="replace"))
            time.sleep(0.05)
        self.assertEqual(tcp_exchange("127.0.0.1", port, b"wake up", timeout=60), b"wake up")
        self.assertEqual(tcp_exchange("127.0.0.1", port, b"again"), b"again")
        stop()
        text = log.read_text(errors="replace")
        self.assertIn("netproto: 2 workers serve echo on 1 socket\n", text)
        self.assertIn("netproto: every worker stopped", text)
