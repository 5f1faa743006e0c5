"""The installed ``twistd netproto`` in a subprocess, driven over loopback (and namespaces)."""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from twisted.trial.unittest import SynchronousTestCase

from tests._helpers import installed_script, root_skip_reason, tool_skip_reason

TWISTD = installed_script("twistd")
CTIME = re.compile(rb"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$")


def free_port() -> int:
    """A port number free for TCP and UDP on IPv4 and IPv6 right now."""
    for _ in range(100):
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        probe.bind(("::", 0))
        number: int = probe.getsockname()[1]
        other = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        other.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            other.bind(("::", number))
        except OSError:
            continue
        finally:
            other.close()
            probe.close()
        return number
    raise RuntimeError("no free port")


class Twistd:
    """One ``twistd -n --pidfile= netproto ARGS`` process with its log in a file."""

    def __init__(
        self,
        *args: str,
        listeners: int,
        prefix: tuple[str, ...] = (),
        twistd_args: tuple[str, ...] = ("-n", "--pidfile="),
        env: dict[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        assert TWISTD is not None
        self.dir = tempfile.mkdtemp(prefix="netproto-twistd-")
        self.log = Path(self.dir) / "twistd.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [*prefix, TWISTD, *twistd_args, "netproto", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                pass_fds=pass_fds,
            )
        self.wait_for(lambda text: text.count(" starting on ") >= listeners, "listening")

    def text(self) -> str:
        """Everything logged so far."""
        return self.log.read_text(errors="replace")

    def wait_for(self, ready: Any, what: str, timeout: float = 15) -> None:
        """Wait until *ready(log text)*; fail if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not ready(self.text()):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"twistd exited ({self.process.returncode}) before {what}:\n{self.text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"twistd not {what} after {timeout}s:\n{self.text()}")
            time.sleep(0.05)

    def rss(self) -> int:
        """Resident set size in bytes."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert match is not None
        return int(match.group(1)) * 1024

    def stop(self) -> None:
        """SIGTERM, then wait; remove the directory."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def metrics(port: int) -> dict[str, int]:
    """
    The counters served by --metrics on 127.0.0.1:*port*, parsed with
    prometheus_client's parser, keyed by netproto's counter name and the
    service: ``udp_replies_sent{echo}`` for
    ``netproto_replies_sent_total{service="echo",transport="udp"}``.
    """
    from prometheus_client.parser import text_string_to_metric_families

    from netproto._listen._metrics import metric_name
    from netproto.limits import COUNTERS

    counter_of = {}
    for counter in COUNTERS:
        name, transport = metric_name(counter)
        counter_of[(name + "_total", transport)] = counter
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            counter = counter_of.get((sample.name, sample.labels.get("transport")))
            if counter is not None:
                values[f"{counter}{{{sample.labels['service']}}}"] = int(sample.value)
    return values


def forged_loops(
    case: SynchronousTestCase, launch: Callable[..., Twistd], seconds: float
) -> list[int]:
    """
    Two instances (*launch* starts one from its options and listener count),
    an echo <-> echo and an echo <-> daytime loop forged between them; the
    counters once they stop moving (within *seconds*): replies sent and
    replies rate-limited, echo then daytime, of the first, then the second.
    """
    ports = [free_port() for _ in range(5)]
    one = launch(f"--echo=udp:{ports[0]}", f"--metrics={ports[1]}", listeners=3)
    case.addCleanup(one.stop)
    two = launch(
        f"--echo=udp:{ports[2]}", f"--daytime=udp:{ports[3]}", f"--metrics={ports[4]}",
        listeners=5,
    )  # fmt: skip
    case.addCleanup(two.stop)
    forge_udp(ports[2], ports[0], b"bounce")
    forge_udp(ports[3], ports[0], b"bounce")
    keys = (
        "udp_replies_sent{echo}",
        "udp_replies_sent{daytime}",
        "udp_rate_limited{echo}",
        "udp_rate_limited{daytime}",
    )
    previous: list[int] = []
    deadline = time.monotonic() + seconds
    while True:
        time.sleep(0.3)
        first, second = metrics(ports[1]), metrics(ports[4])
        now = [first.get(k, 0) for k in keys] + [second[k] for k in keys]
        if now == previous and now[0] > 0:
            return now
        previous = now
        case.assertLess(time.monotonic(), deadline, f"still bouncing: {now}")


def assert_loops_bounded(case: SynchronousTestCase, counts: list[int]) -> None:
    """What :func:`forged_loops` counted stays within one source's burst of 40."""
    sent_one, _, limited_one, _, echo_two, daytime_two, limited_echo, limited_day = counts
    # Each instance answers one source address (127.0.0.1): one bucket of 40
    # (with workers, split between them).
    case.assertLessEqual(sent_one, 41)
    case.assertLessEqual(echo_two, 41)
    case.assertLessEqual(daytime_two, 41)
    case.assertGreater(echo_two + daytime_two, 0)
    # Each chain ends with exactly one dropped reply.
    case.assertEqual(limited_one + limited_echo + limited_day, 2)


def tcp_exchange(host: str, port: int, data: bytes, timeout: float = 10) -> bytes:
    """Connect, send *data*, shut down writing, read to EOF (reading while writing)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect((host, port))
        conn.setblocking(False)
        received = bytearray()
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        shut = False
        while True:
            if not view and not shut:
                shut = True
                try:
                    conn.shutdown(socket.SHUT_WR)
                except OSError:  # the server closed first (daytime)
                    pass
            readable, writable, _ = select.select([conn], [conn] if view else [], [], 1)
            if writable:
                try:
                    view = view[conn.send(view[:65536]) :]
                except OSError:  # the server closed first (daytime)
                    view = view[:0]
            if readable:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    return bytes(received)
                received += chunk
            if time.monotonic() > deadline:
                raise AssertionError(f"no EOF after {timeout}s ({len(received)} bytes)")


def udp_exchange(host: str, port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send one datagram, return the first answer."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, (host, port))
        answer, _ = sock.recvfrom(65535)
        return answer


def _skip() -> str | None:
    if TWISTD is None:
        return "twistd is not installed"
    return None


class ServingTests(SynchronousTestCase):
    """One ``twistd netproto --daytime=P --echo=P --metrics=P`` serves every transport."""

    daytime: ClassVar[int]
    echo: ClassVar[int]
    metrics_port: ClassVar[int]

    server: ClassVar[Twistd | None] = None

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)
        if ServingTests.server is None:
            # One server for the whole class (trial has no setUpClass); stopped at exit.
            cls = ServingTests
            cls.daytime, cls.echo, cls.metrics_port = free_port(), free_port(), free_port()
            cls.server = Twistd(
                f"--daytime={cls.daytime}",
                f"--echo={cls.echo}",
                f"--metrics={cls.metrics_port}",
                "--udp-rate=1000",
                "--udp-burst=1000",
                listeners=9,
            )
            atexit.register(cls.server.stop)

    def test_daytime_tcp(self) -> None:
        """Daytime over TCP, IPv4 and IPv6: one ctime line with CRLF, then close."""
        for host in ("127.0.0.1", "::1"):
            self.assertRegex(tcp_exchange(host, self.daytime, b"ignored"), CTIME)

    def test_daytime_udp(self) -> None:
        """Daytime over UDP, IPv4 and IPv6: any datagram (even empty) gets the line."""
        for host, data in (("127.0.0.1", b""), ("::1", b"what time is it")):
            self.assertRegex(udp_exchange(host, self.daytime, data), CTIME)

    def test_echo_tcp_half_close(self) -> None:
        """8 MiB echoed over TCP exactly, all of it, after the client's half-close (v4, v6)."""
        payload = os.urandom(1 << 20) * 8
        for host in ("127.0.0.1", "::1"):
            self.assertEqual(tcp_exchange(host, self.echo, payload, timeout=30), payload)

    def test_echo_udp_sizes(self) -> None:
        """UDP echo of 0 bytes and the largest datagrams: 65,507 (IPv4), 65,527 (IPv6)."""
        for host, size in (("127.0.0.1", 0), ("127.0.0.1", 65507), ("::1", 0), ("::1", 65527)):
            data = os.urandom(size)
            self.assertEqual(udp_exchange(host, self.echo, data), data, (host, size))

    def test_nc_and_socat(self) -> None:
        """The system's nc and socat, as clients, get echo and daytime."""
        for tool in ("nc", "socat"):
            reason = tool_skip_reason(tool)
            if reason:
                self.skipTest(reason)
        nc = subprocess.run(
            ["nc", "-N", "127.0.0.1", str(self.echo)],
            input=b"hello nc\n",
            capture_output=True,
            timeout=10,
            check=False,
        )
        self.assertEqual(nc.stdout, b"hello nc\n")
        for address in (f"TCP6:[::1]:{self.daytime}", f"UDP4:127.0.0.1:{self.daytime}"):
            result = subprocess.run(
                ["socat", "-t2", "-", address],
                input=b"x",
                capture_output=True,
                timeout=10,
                check=False,
            )
            self.assertRegex(result.stdout, CTIME, address)
        result = subprocess.run(
            ["socat", "-t2", "-", f"UDP6:[::1]:{self.echo}"],
            input=b"socat udp",
            capture_output=True,
            timeout=10,
            check=False,
        )
        self.assertEqual(result.stdout, b"socat udp")

    def test_non_reading_client(self) -> None:
        """A client that writes 64 MiB and never reads grows the server by < 16 MB."""
        assert self.server is not None
        before = self.server.rss()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as conn:
            conn.connect(("127.0.0.1", self.echo))
            conn.setblocking(False)
            block = b"z" * 65536
            sent = 0
            stuck_since: float | None = None
            while sent < 64 << 20:
                try:
                    sent += conn.send(block)
                    stuck_since = None
                except BlockingIOError:
                    now = time.monotonic()
                    stuck_since = stuck_since or now
                    if now - stuck_since > 1.0:
                        break
                    select.select([], [conn], [], 0.1)
            grown = self.server.rss() - before
        self.assertLess(sent, 64 << 20, "the server kept reading from a client that never reads")
        self.assertLess(grown, 16 << 20)

    def test_metrics(self) -> None:
        """--metrics serves the counters in the Prometheus text format."""
        tcp_exchange("127.0.0.1", self.echo, b"count me")
        udp_exchange("127.0.0.1", self.echo, b"count me too")
        values = metrics(self.metrics_port)
        self.assertGreaterEqual(values["tcp_connections{echo}"], 1)
        self.assertGreaterEqual(values["udp_replies_sent{echo}"], 1)
        self.assertIn("udp_refused_destination{daytime}", values)
        self.assertNotIn("tcp_connections{metrics}", values)

    def test_quiet_log(self) -> None:
        """
        Start-up names no object addresses (factories are quiet), and a HEAD
        of /metrics (``curl -I``) answers the GET's length, no body, no warning.
        """
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        try:
            connection.request("HEAD", "/metrics")
            response = connection.getresponse()
            self.assertEqual((response.status, response.read()), (200, b""))
            self.assertGreater(int(response.getheader("content-length", "0")), 0)
        finally:
            connection.close()
        curl = shutil.which("curl")
        if curl is not None:
            head = subprocess.run(
                [curl, "-sSI", f"http://127.0.0.1:{self.metrics_port}/metrics"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            self.assertEqual(head.returncode, 0, head.stderr)
            self.assertIn("200 OK", head.stdout)
        assert self.server is not None
        # A request is logged (if at all) once it is answered: both are, by now.
        text = self.server.text()
        self.assertNotRegex(text, r" at 0x[0-9a-f]+")
        self.assertNotIn("Warning", text)
        self.assertNotIn("I think I'll eat it", text)

    def test_broadcast_destination(self) -> None:
        """A datagram to lo's broadcast address 127.255.255.255 is counted, not answered."""
        before = metrics(self.metrics_port)["udp_refused_destination{echo}"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.settimeout(0.5)
            sock.sendto(b"fraggle", ("127.255.255.255", self.echo))
            self.assertRaises(socket.timeout, sock.recvfrom, 100)
        after = metrics(self.metrics_port)["udp_refused_destination{echo}"]
        self.assertEqual(after, before + 1)


def self_signed(directory: str) -> tuple[str, str]:
    """Write a throwaway key and self-signed certificate for 127.0.0.1; return their paths."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    with open(key_path, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(cert_path, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class EndpointTests(SynchronousTestCase):
    """Endpoint SPECs reach Twisted's endpoints: TLS and UNIX sockets serve echo and daytime."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def test_ssl_and_unix(self) -> None:
        """echo and daytime over ssl: (TLS) and unix: endpoints (daytime over TLS is not
        answered in the clear on the accepted socket)."""
        import ssl

        work = tempfile.mkdtemp(prefix="netproto-endpoints-")
        self.addCleanup(shutil.rmtree, work, True)
        key, cert = self_signed(work)
        port, tls_daytime = free_port(), free_port()
        echo_sock, daytime_sock = os.path.join(work, "echo.sock"), os.path.join(work, "day.sock")
        server = Twistd(
            f"--echo=ssl:{port}:interface=127.0.0.1:privateKey={key}:certKey={cert}",
            f"--echo=unix:{echo_sock}",
            f"--daytime=unix:{daytime_sock}",
            f"--daytime=ssl:{tls_daytime}:interface=127.0.0.1:privateKey={key}:certKey={cert}",
            listeners=4,
        )
        self.addCleanup(server.stop)
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw) as tls,
        ):
            tls.sendall(b"over TLS")
            received = b""
            while len(received) < 8:
                received += tls.recv(100)
        self.assertEqual(received, b"over TLS")
        with (
            socket.create_connection(("127.0.0.1", tls_daytime), timeout=10) as raw,
            context.wrap_socket(raw) as tls,
        ):
            self.assertRegex(tls.recv(100), CTIME)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
            unix.settimeout(10)
            unix.connect(echo_sock)
            unix.sendall(b"over UNIX")
            unix.shutdown(socket.SHUT_WR)
            self.assertEqual(unix.recv(100), b"over UNIX")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
            unix.settimeout(10)
            unix.connect(daytime_sock)
            self.assertRegex(unix.recv(100), CTIME)


def forge_udp(source_port: int, dest_port: int, payload: bytes) -> None:
    """Send one UDP datagram from 127.0.0.1:*source_port* to 127.0.0.1:*dest_port* (raw)."""
    udp_header = struct.pack("!HHHH", source_port, dest_port, 8 + len(payload), 0)
    loopback = socket.inet_aton("127.0.0.1")
    ip_header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + 8 + len(payload),
        0,
        0,
        64,
        socket.IPPROTO_UDP,
        0,
        loopback,
        loopback,
    )
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        raw.sendto(ip_header + udp_header + payload, ("127.0.0.1", 0))


class LoopTests(SynchronousTestCase):
    """Two instances on high ports: one forged datagram between them stops bouncing."""

    def setUp(self) -> None:
        reason = _skip() or root_skip_reason()
        if reason:
            self.skipTest(reason)

    def test_forged_loop_dies(self) -> None:
        """echo <-> echo and echo <-> daytime loops end within the default burst (40)."""
        launch = lambda *options, listeners: Twistd(*options, listeners=listeners)  # noqa: E731
        assert_loops_bounded(self, forged_loops(self, launch, seconds=10))


class FailureTests(SynchronousTestCase):
    """Bad options and unusable ports: non-zero exit, one clear line naming the option."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def run_twistd(
        self,
        *args: str,
        twistd_args: tuple[str, ...] = ("-n", "--pidfile="),
        cwd: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run twistd to completion."""
        assert TWISTD is not None
        return subprocess.run(
            [TWISTD, *twistd_args, "netproto", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=cwd or tempfile.gettempdir(),
            stdin=subprocess.DEVNULL,
        )

    def test_bad_option(self) -> None:
        """
        A bad SPEC, limit or option: exit 1 and one line on stderr naming the
        option and the reason; not twistd's whole usage text on stdout, not
        the path of the twistd script.
        """
        for arg, reason in (
            ("--echo=70000", "--echo=70000: port 70000 is out of range"),
            ("--daytime=udp:13:interface=nowhere", "not an IPv4 or IPv6"),
            ("--udp-rate=-3", "--udp-rate: must be >= 0"),
            ("--udp-rate=abc", "--udp-rate: 'abc' is not a number"),
            ("--ech=1207", "unknown option --ech (did you mean --echo?)"),
            ("--bogus", "unknown option --bogus"),
        ):
            with self.subTest(arg=arg):
                result = self.run_twistd(arg)
                self.assertEqual((result.returncode, result.stdout), (1, ""), result)
                lines = result.stderr.splitlines()
                self.assertEqual(len(lines), 1, result.stderr)
                self.assertTrue(lines[0].startswith("twistd netproto: "), lines[0])
                self.assertIn(reason, lines[0])
                self.assertTrue(lines[0].endswith("(see 'twistd netproto --help')"), lines[0])
                assert TWISTD is not None
                self.assertNotIn(TWISTD, result.stderr)

    def test_port_in_use(self) -> None:
        """A TCP port in use: exit 1, exactly one line on stderr, no traceback."""
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        number = busy.getsockname()[1]
        free = free_port()
        result = self.run_twistd(f"--daytime={free}", f"--echo=tcp:{number}:interface=127.0.0.1")
        self.assertEqual(result.returncode, 1, result)
        line = (
            f"netproto: --echo=tcp:{number}:interface=127.0.0.1: cannot listen on "
            f"tcp:{number}:interface=127.0.0.1: address already in use"
        )
        self.assertEqual(result.stderr.splitlines(), [line])
        self.assertNotIn("Traceback", result.stdout)
        # twistd -n logs to stdout: the terminal would show the line twice.
        self.assertNotIn("cannot listen", result.stdout)
        work = tempfile.mkdtemp(prefix="netproto-log-")
        self.addCleanup(shutil.rmtree, work, True)
        log = os.path.join(work, "twistd.log")
        result = self.run_twistd(
            f"--echo=tcp:{number}:interface=127.0.0.1",
            twistd_args=("-n", "--pidfile=", f"--logfile={log}"),
        )
        self.assertEqual((result.returncode, result.stderr.splitlines()), (1, [line]))
        with open(log) as logged:
            self.assertIn(line, logged.read())

    def test_permission_denied(self) -> None:
        """Port 7 as an unprivileged user (in a namespace): exit 1, one line on stderr."""
        reason = root_skip_reason() or tool_skip_reason("unshare") or tool_skip_reason("setpriv")
        if reason:
            self.skipTest(reason)
        assert TWISTD is not None
        result = subprocess.run(
            [
                "unshare",
                "-n",
                "setpriv",
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                TWISTD,
                "-n",
                "--pidfile=",
                "netproto",
                "--echo=7",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd="/",
            stdin=subprocess.DEVNULL,
        )
        self.assertEqual(result.returncode, 1, result)
        self.assertEqual(
            result.stderr.splitlines(),
            [
                "netproto: --echo=7: cannot listen on TCP port 7 (IPv4): permission denied "
                "(start as root with twistd --uid/--gid, grant CAP_NET_BIND_SERVICE, "
                "or use socket activation)"
            ],
        )

    def test_port_in_use_daemon(self) -> None:
        """As a daemon: exit 1, the reason in twistd's start-up report, the pid file removed."""
        busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        number = busy.getsockname()[1]
        work = tempfile.mkdtemp(prefix="netproto-daemon-")
        self.addCleanup(shutil.rmtree, work, True)
        pidfile = os.path.join(work, "twistd.pid")
        result = self.run_twistd(
            f"--echo=udp:{number}:interface=127.0.0.1",
            twistd_args=(f"--pidfile={pidfile}", f"--logfile={work}/twistd.log"),
            cwd=work,
        )
        self.assertEqual(result.returncode, 1, result)
        # twistd passes on at most 100 bytes, as a bytes repr: the option and
        # the reason, whole; the log has the full line.
        self.assertIn(
            f"b'netproto: --echo=udp:{number}:interface=127.0.0.1: address already in use'",
            result.stderr,
        )
        self.assertNotIn("BindError", result.stderr)
        # The daemon removes its pid file as it exits, which may be just after
        # twistd's parent has reported and returned: wait for it (bounded).
        deadline = time.monotonic() + 20
        while os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(os.path.exists(pidfile))
        with open(os.path.join(work, "twistd.log")) as logged:
            self.assertIn(
                f"--echo=udp:{number}:interface=127.0.0.1: cannot listen on UDP port {number}",
                logged.read(),
            )


_NETNS_SCRIPT = r"""
import json, os, socket, subprocess, sys, time
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
twistd, extra = sys.argv[1], sys.argv[2:]
log = open("twistd.log", "wb")
proc = subprocess.Popen([twistd, "-n", "--pidfile=", *extra, "netproto", "--echo=7",
                         "--daytime=13"], stdout=log, stderr=subprocess.STDOUT)
result = {}
try:
    deadline = time.monotonic() + 15
    while open("twistd.log").read().count(" starting on ") < 8:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("twistd did not start:\n" + open("twistd.log").read())
        time.sleep(0.05)
    time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", 13), timeout=5) as c:
        result["daytime_tcp"] = c.recv(100).decode()
    with socket.create_connection(("::1", 7), timeout=5) as c:
        c.sendall(b"seven")
        result["echo_tcp"] = c.recv(100).decode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(b"udp seven", ("127.0.0.1", 7))
        result["echo_udp"] = u.recvfrom(100)[0].decode()
    status = open(f"/proc/{proc.pid}/status").read()
    result["uid"] = [l for l in status.splitlines() if l.startswith("Uid:")][0].split()[1:]
finally:
    proc.terminate()
    proc.wait(10)
    result["log"] = open("twistd.log").read()
print(json.dumps(result))
"""


class PrivilegeTests(SynchronousTestCase):
    """Ports 7 and 13 as root, in a private network namespace (the host's may be taken)."""

    def setUp(self) -> None:
        reason = _skip() or root_skip_reason() or tool_skip_reason("unshare")
        if reason:
            self.skipTest(reason)

    def in_namespace(self, *twistd_args: str) -> dict[str, Any]:
        """Run twistd on 7 and 13 inside ``unshare -n``; return what the clients saw."""
        assert TWISTD is not None
        work = tempfile.mkdtemp(prefix="netproto-netns-")
        self.addCleanup(shutil.rmtree, work, True)
        result = subprocess.run(
            ["unshare", "-n", sys.executable, "-c", _NETNS_SCRIPT, TWISTD, *twistd_args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=work,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        loaded: dict[str, Any] = json.loads(result.stdout)
        return loaded

    def test_drop_to_nobody(self) -> None:
        """--uid nobody: bound as root, then serving daytime and echo as uid 65534."""
        nobody = subprocess.run(
            ["id", "-u", "nobody"], capture_output=True, text=True, check=False
        ).stdout.strip()
        seen = self.in_namespace("--uid", "nobody", "--gid", "nogroup")
        self.assertRegex(seen["daytime_tcp"].encode(), CTIME)
        self.assertEqual((seen["echo_tcp"], seen["echo_udp"]), ("seven", "udp seven"))
        self.assertEqual(seen["uid"], [nobody] * 4)
        self.assertNotIn("running as root", seen["log"])

    def test_root_warning(self) -> None:
        """Still root on ports 7 and 13: it works, and one warning says how to drop privileges."""
        seen = self.in_namespace()
        self.assertEqual(seen["echo_udp"], "udp seven")
        self.assertEqual(seen["uid"], ["0"] * 4)
        self.assertEqual(seen["log"].count("running as root on privileged port(s) 7, 13"), 1)


_MULTICAST_SCRIPT = r"""
import json, socket, subprocess, sys, time
subprocess.run("ip link set lo up && ip link set lo multicast on && "
               "ip route add 224.0.0.0/4 dev lo", shell=True, check=True)
twistd = sys.argv[1]
log = open("twistd.log", "wb")
proc = subprocess.Popen([twistd, "-n", "--pidfile=", "netproto",
                         "--echo=udp:1207:interface=0.0.0.0", "--echo=1208"],
                        stdout=log, stderr=subprocess.STDOUT)
result = {}
try:
    deadline = time.monotonic() + 15
    while open("twistd.log").read().count(" starting on ") < 4:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("twistd did not start:\n" + open("twistd.log").read())
        time.sleep(0.05)
    for port in (1207, 1208):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(0.5)
            c.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
            c.sendto(b"all hosts", ("224.0.0.1", port))
            try:
                result[f"multicast {port}"] = c.recvfrom(100)[0].decode()
            except socket.timeout:
                result[f"multicast {port}"] = None
            c.sendto(b"unicast", ("127.0.0.1", port))
            result[f"unicast {port}"] = c.recvfrom(100)[0].decode()
    # Control: an ordinary socket on the same kind of address does receive it.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
        plain.bind(("0.0.0.0", 1209))
        plain.settimeout(0.5)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                         socket.inet_aton("127.0.0.1"))
            c.sendto(b"control", ("224.0.0.1", 1209))
        result["control"] = plain.recvfrom(100)[0].decode()
finally:
    proc.terminate()
    proc.wait(10)
print(json.dumps(result))
"""


class MulticastTests(SynchronousTestCase):
    """Multicast to the all-hosts group is never answered (in a private namespace)."""

    def setUp(self) -> None:
        reason = _skip() or root_skip_reason() or tool_skip_reason("unshare")
        if reason:
            self.skipTest(reason)

    def test_all_hosts_not_answered(self) -> None:
        """A datagram to 224.0.0.1 gets no echo (IPv4 and dual-stack sockets); unicast does."""
        assert TWISTD is not None
        work = tempfile.mkdtemp(prefix="netproto-mcast-")
        self.addCleanup(shutil.rmtree, work, True)
        result = subprocess.run(
            ["unshare", "-n", sys.executable, "-c", _MULTICAST_SCRIPT, TWISTD],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=work,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertEqual(
            json.loads(result.stdout),
            {
                "multicast 1207": None,
                "unicast 1207": "unicast",
                "multicast 1208": None,
                "unicast 1208": "unicast",
                "control": "control",
            },
        )


_LAUNCHER = r"""
import os, sys
# argv: the descriptors to pass as 3, 4, ..., "--", the program and its arguments.
split = sys.argv.index("--")
fds = [int(fd) for fd in sys.argv[1:split]]
moved = [os.dup(fd) for fd in fds]  # out of the way of 3, 4, ...
for target, fd in enumerate(moved, start=3):
    os.dup2(fd, target)
    os.set_inheritable(target, True)
env = dict(os.environ, LISTEN_FDS=str(len(fds)), LISTEN_PID=str(os.getpid()),
           LISTEN_FDNAMES="echo-tcp:echo-udp")
program = sys.argv[split + 1:]
os.execve(program[0], program, env)
"""


class SystemdTests(SynchronousTestCase):
    """Socket activation: TCP and UDP sockets passed in LISTEN_FDS are adopted."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def test_adopted_sockets(self) -> None:
        """An inherited TCP socket (by index) and UDP socket (by name) both serve echo,
        including the datagram that arrived before the service started (activation)."""
        assert TWISTD is not None
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
        early.settimeout(10)
        early.sendto(b"the activating datagram", ("127.0.0.1", port))
        server = Twistd(
            "--echo=systemd:domain=INET:index=0",
            "--echo=systemd:domain=INET6:name=echo-udp",
            listeners=2,
            prefix=(sys.executable, "-c", _LAUNCHER, str(tcp.fileno()), str(udp.fileno()), "--"),
            pass_fds=(tcp.fileno(), udp.fileno()),
        )
        self.addCleanup(server.stop)
        self.assertEqual(early.recvfrom(100)[0], b"the activating datagram")
        self.assertEqual(tcp_exchange("127.0.0.1", port, b"adopted"), b"adopted")
        data = os.urandom(65527)
        self.assertEqual(udp_exchange("::1", port, data), data)
        self.assertIn(f"echo on inherited socket fd 4 (UDP port {port})", server.text())
