"""
Running under systemd: readiness (``sd_notify``), the journal's log format,
and the shipped units in ``contrib/systemd/``, checked with
``systemd-analyze verify`` and run as their ``ExecStart=`` says with the
sockets the ``.socket`` unit lists, passed the way systemd passes them. A
unix datagram socket of the test stands in for systemd's notify socket.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from netproto._listen._notify import notify, status_text
from netproto.journal import JournalObserver, observer
from tests.test_tap_live import TWISTD, Twistd, free_port, tcp_exchange, udp_exchange

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "contrib" / "systemd"
BIN = Path(TWISTD).parent if TWISTD is not None else None


class NotifySocket:
    """A unix datagram socket standing in for systemd's ``$NOTIFY_SOCKET``."""

    def __init__(self, *, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.sock.bind(f"\0netproto-test-{os.getpid()}-{id(self)}")
            self.address = "@" + self.sock.getsockname()[1:].decode()
        else:
            self.dir = tempfile.mkdtemp(prefix="netproto-notify-")
            self.address = os.path.join(self.dir, "notify")
            self.sock.bind(self.address)

    def receive(self, timeout: float = 30) -> dict[str, str]:
        """The next message's fields; fails after *timeout* seconds without one."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536).decode()
        return dict(line.split("=", 1) for line in data.split("\n"))

    def close(self) -> None:
        self.sock.close()
        if hasattr(self, "dir"):
            shutil.rmtree(self.dir, ignore_errors=True)


class NotifyTests(SynchronousTestCase):
    """``notify`` sends one datagram of KEY=VALUE lines, and never raises."""

    def test_path_socket(self) -> None:
        """A path in NOTIFY_SOCKET gets READY=1 and STATUS=, newlines flattened."""
        manager = NotifySocket()
        self.addCleanup(manager.close)
        sent = notify({"READY": "1", "STATUS": "two\nlines"}, {"NOTIFY_SOCKET": manager.address})
        self.assertTrue(sent)
        self.assertEqual(manager.receive(), {"READY": "1", "STATUS": "two lines"})

    def test_abstract_socket(self) -> None:
        """``@name`` means the abstract socket ``\\0name``."""
        manager = NotifySocket(abstract=True)
        self.addCleanup(manager.close)
        self.assertTrue(notify({"STOPPING": "1"}, {"NOTIFY_SOCKET": manager.address}))
        self.assertEqual(manager.receive(), {"STOPPING": "1"})

    def test_no_manager(self) -> None:
        """No NOTIFY_SOCKET, a relative name, or nobody listening: False, no exception."""
        self.assertFalse(notify({"READY": "1"}, {}))
        self.assertFalse(notify({"READY": "1"}, {"NOTIFY_SOCKET": "relative"}))
        gone = os.path.join(tempfile.gettempdir(), f"netproto-absent-{os.getpid()}")
        self.assertFalse(notify({"READY": "1"}, {"NOTIFY_SOCKET": gone}))

    def test_status_text(self) -> None:
        """STATUS= names each served socket, and is cut to one screen line."""
        self.assertEqual(
            status_text(["echo on tcp:7", "daytime on udp:13"]),
            "serving echo on tcp:7; daytime on udp:13",
        )
        self.assertEqual(status_text([]), "serving nothing")
        long = status_text([f"echo on TCP port {n}" for n in range(100)])
        self.assertEqual((len(long), long[-3:]), (400, "..."))


class JournalObserverTests(SynchronousTestCase):
    """Each line of each event carries the journal's priority prefix, no timestamp."""

    def events(self, emit: object) -> list[str]:
        out = io.StringIO()
        log = Logger(namespace="netproto.test", observer=JournalObserver(out))
        emit(log)  # type: ignore[operator]
        return out.getvalue().splitlines()

    def test_priorities(self) -> None:
        """debug 7, info 6, warn 4, error 3, critical 2; namespace and level shown."""
        lines = self.events(
            lambda log: [
                log.emit(level, "said {what}", what=level.name)
                for level in (
                    LogLevel.debug,
                    LogLevel.info,
                    LogLevel.warn,
                    LogLevel.error,
                    LogLevel.critical,
                )
            ]
        )
        self.assertEqual(
            lines,
            [
                "<7>[netproto.test#debug] said debug",
                "<6>[netproto.test#info] said info",
                "<4>[netproto.test#warn] said warn",
                "<3>[netproto.test#error] said error",
                "<2>[netproto.test#critical] said critical",
            ],
        )

    def test_traceback_lines(self) -> None:
        """A failure's traceback keeps the event's priority on every line."""
        try:
            raise ValueError("boom")
        except ValueError:
            failure = Failure()
        lines = self.events(lambda log: log.failure("it broke", failure))
        self.assertGreater(len(lines), 2)
        self.assertEqual(lines[0], "<2>[netproto.test#critical] it broke")
        self.assertTrue(all(line.startswith("<2>") for line in lines), lines)
        self.assertIn("ValueError: boom", lines[-1])

    def test_factory(self) -> None:
        """``observer()`` (what ``--logger`` calls) writes to the process's stdout."""
        made = observer()
        self.assertIs(made.out, sys.__stdout__)


def _skip() -> str | None:
    if TWISTD is None:
        return "twistd is not installed"
    return None


def exec_start(service: Path, bin_dir: Path) -> list[str]:
    """The ``ExecStart=`` command of unit file *service*, run from *bin_dir*."""
    text = service.read_text().replace("\\\n", " ")
    (line,) = (ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    return [
        word.replace("/opt/netproto/bin/", f"{bin_dir}/")
        for word in shlex.split(line.partition("=")[2])
    ]


def socket_lines(unit: Path) -> list[tuple[int, int]]:
    """The (socket type, port) of each Listen line of socket unit *unit*, in order."""
    found = []
    for line in unit.read_text().splitlines():
        match = re.match(r"^Listen(Stream|Datagram)=(\d+)$", line)
        if match:
            kind = socket.SOCK_STREAM if match.group(1) == "Stream" else socket.SOCK_DGRAM
            found.append((kind, int(match.group(2))))
    return found


_LAUNCHER = r"""
import os, sys
# argv: descriptors to pass as 3, 4, ..., "--", the program and its arguments.
split = sys.argv.index("--")
moved = [os.dup(int(fd)) for fd in sys.argv[1:split]]
for target, fd in enumerate(moved, start=3):
    os.dup2(fd, target)
    os.set_inheritable(target, True)
# Without FileDescriptorName=, systemd names every socket after its unit.
env = dict(os.environ, LISTEN_FDS=str(len(moved)), LISTEN_PID=str(os.getpid()),
           LISTEN_FDNAMES=":".join(["netproto.socket"] * len(moved)))
os.execve(sys.argv[split + 1], sys.argv[split + 1:], env)
"""
"""What systemd does for a socket unit's service: descriptors from 3 on, LISTEN_*."""


class UnitTests(SynchronousTestCase):
    """The units under contrib/systemd/ are valid, hardened, and start ``Type=notify``."""

    def setUp(self) -> None:
        if not UNITS.is_dir():
            self.skipTest("not run from a source tree (no contrib/systemd/)")

    def test_hardening(self) -> None:
        """The service unit sets the sandboxing an operator expects."""
        text = (UNITS / "netproto.service").read_text()
        for directive in (
            "Type=notify",
            "DynamicUser=yes",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "CapabilityBoundingSet=\n",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
            "SystemCallFilter=@system-service",
        ):
            self.assertIn(directive, text)

    def test_systemd_analyze_verify(self) -> None:
        """``systemd-analyze verify`` accepts both units (paths pointed at this install)."""
        analyze = shutil.which("systemd-analyze")
        if analyze is None or BIN is None:
            self.skipTest("systemd-analyze or twistd is not installed")
        work = Path(self.mktemp())
        work.mkdir()
        for name in ("netproto.socket", "netproto.service"):
            text = (UNITS / name).read_text().replace("/opt/netproto/bin/", f"{BIN}/")
            (work / name).write_text(text)
        result = subprocess.run(
            [analyze, "verify", str(work / "netproto.socket"), str(work / "netproto.service")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.assertEqual((result.returncode, result.stderr), (0, ""), result.stdout)

    def test_unit_start(self) -> None:
        """
        ``ExecStart=`` of the service, with the socket unit's sockets passed in
        its order: READY=1 only once every socket is served (each answers at
        once), STATUS= names them, the log is in the journal's format, and
        stopping says STOPPING=1.
        """
        reason = _skip()
        if reason:
            self.skipTest(reason)
        assert BIN is not None
        command = exec_start(UNITS / "netproto.service", BIN)
        metrics = free_port()
        command = [f"--metrics={metrics}" if w.startswith("--metrics=") else w for w in command]
        lines = socket_lines(UNITS / "netproto.socket")
        self.assertEqual([kind for kind, _ in lines], [socket.SOCK_STREAM, socket.SOCK_DGRAM] * 2)
        ports = {13: free_port(), 7: free_port()}
        passed = []
        for kind, number in lines:
            sock = socket.socket(socket.AF_INET6, kind)
            self.addCleanup(sock.close)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(("::", ports[number]))
            if kind == socket.SOCK_STREAM:
                sock.listen(50)
            passed.append(sock.fileno())
        manager = NotifySocket()
        self.addCleanup(manager.close)
        server = Twistd(
            *command[command.index("netproto") + 1 :],
            listeners=5,
            prefix=(sys.executable, "-c", _LAUNCHER, *map(str, passed), "--"),
            twistd_args=tuple(command[1 : command.index("netproto")]),
            env=dict(os.environ, NOTIFY_SOCKET=manager.address),
            pass_fds=tuple(passed),
        )
        self.addCleanup(server.stop)
        ready = manager.receive()
        self.assertEqual(ready["READY"], "1")
        self.assertRegex(ready["STATUS"], r"^serving daytime on inherited socket fd 3 ")
        self.assertIn(f"echo on inherited socket fd 6 (UDP port {ports[7]})", ready["STATUS"])
        self.assertIn(f"metrics on tcp:{metrics}:interface=127.0.0.1", ready["STATUS"])
        self.assertEqual(tcp_exchange("127.0.0.1", ports[7], b"unit"), b"unit")
        self.assertEqual(udp_exchange("::1", ports[7], b"unit"), b"unit")
        self.assertTrue(udp_exchange("127.0.0.1", ports[13], b"").endswith(b"\r\n"))
        self.assertTrue(tcp_exchange("::1", ports[13], b"").endswith(b"\r\n"))
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10) as r:
            self.assertEqual(r.status, 200)
        log = server.text().splitlines()
        self.assertIn(
            f"<6>[netproto.tap#info] netproto: echo on inherited socket fd 5 (TCP port {ports[7]})",
            log,
        )
        self.assertTrue(all(re.match(r"^<[2-7]>\[", line) for line in log), log)
        server.process.terminate()
        self.assertEqual(manager.receive(), {"STOPPING": "1", "STATUS": "stopping"})


class JournalLiveTests(SynchronousTestCase):
    """``twistd --logger=netproto.journal.observer``: what systemd's journal reads."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def test_bind_failure(self) -> None:
        """
        A port in use: exit 1, one ``<2>`` critical line in the log naming the
        option (not a second copy on stderr), and STATUS= tells the manager.
        """
        assert TWISTD is not None
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        manager = NotifySocket()
        self.addCleanup(manager.close)
        result = subprocess.run(
            [
                TWISTD,
                "--logger=netproto.journal.observer",
                "-n",
                "--pidfile=",
                "netproto",
                f"--echo=tcp:{port}:interface=127.0.0.1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tempfile.gettempdir(),
            env=dict(os.environ, NOTIFY_SOCKET=manager.address),
            stdin=subprocess.DEVNULL,
        )
        self.assertEqual((result.returncode, result.stderr), (1, ""), result.stdout)
        message = (
            f"netproto: --echo=tcp:{port}:interface=127.0.0.1: cannot listen on "
            f"tcp:{port}:interface=127.0.0.1: address already in use"
        )
        self.assertIn(f"<2>[netproto.tap#critical] {message}", result.stdout.splitlines())
        self.assertEqual(manager.receive(), {"STATUS": f"failed: {message[10:]}"})

    def test_systemd_socket_activate(self) -> None:
        """Under ``systemd-socket-activate`` (the real launcher), READY=1 after adoption."""
        activate = shutil.which("systemd-socket-activate")
        if activate is None:
            self.skipTest("systemd-socket-activate is not installed")
        assert TWISTD is not None
        port = free_port()
        manager = NotifySocket()
        self.addCleanup(manager.close)
        server = Twistd(
            "--echo=systemd:domain=INET:index=0",
            listeners=0,  # nothing runs before the first connection
            # Twisted adopts nothing without LISTEN_FDNAMES: --fdname sets it.
            prefix=(
                activate,
                "-l",
                f"127.0.0.1:{port}",
                "--fdname=echo",
                "-E",
                f"NOTIFY_SOCKET={manager.address}",
            ),
            twistd_args=("--logger=netproto.journal.observer", "-n", "--pidfile="),
        )
        self.addCleanup(server.stop)
        server.wait_for(lambda text: "Listening on" in text, "listening")
        # systemd-socket-activate starts the program on the first connection.
        self.assertEqual(tcp_exchange("127.0.0.1", port, b"activated"), b"activated")
        ready = manager.receive()
        self.assertEqual(ready["READY"], "1")
        self.assertIn(f"echo on inherited socket fd 3 (TCP port {port})", ready["STATUS"])
