"""
``twistd netproto`` serving discard, chargen, time and qotd, driven by nc, socat,
the project's own commands and (when installed) xinetd side by side; access
rules through the plugin; ports 9, 19, 37 and 17 with a privilege drop.
"""

from __future__ import annotations

import atexit
import json
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from netproto.chargen import PERIOD, check_stream
from netproto.tap import Options
from netproto.time import EPOCH_OFFSET, from_rfc868
from tests._helpers import root_skip_reason, run_cli, tool_skip_reason
from tests._servers import IPV6_SKIP
from tests.test_tap_live import TWISTD, Twistd, _skip, free_port, metrics, udp_exchange

QUOTES = "The first quote.\n%\nThe second,\non two lines.\n%\n"


def run(command: str, stdin: bytes = b"", timeout: float = 20) -> bytes:
    """Run a shell pipeline; its standard output."""
    done = subprocess.run(
        ["/bin/sh", "-c", command], input=stdin, capture_output=True, timeout=timeout, check=False
    )
    return done.stdout


def stream_from(start: int, size: int) -> bytes:
    """*size* bytes of the chargen stream from line *start*."""
    whole = PERIOD * (size // len(PERIOD) + 3)
    return whole[start * 74 : start * 74 + size]


class OptionsTests(SynchronousTestCase):
    """The new options, and their mistakes as one line naming the option."""

    def parse(self, *args: str) -> Options:
        options = Options()
        options.parseOptions(list(args))
        return options

    def test_rules_and_flags(self) -> None:
        """--allow/--deny repeat; --connection-rate parses; --chargen-rfc-udp is a flag."""
        options = self.parse(
            "--chargen=1219",
            "--allow=10.0.0.0/8",
            "--allow=::1",
            "--deny=10.1.0.0/16",
            "--connection-rate=5",
            "--chargen-rfc-udp",
        )
        rules = options["access"]
        self.assertEqual([str(n) for n in rules.allow], ["10.0.0.0/8", "::1/128"])
        self.assertEqual([str(n) for n in rules.deny], ["10.1.0.0/16"])
        self.assertEqual(rules.connection_rate, 5.0)
        self.assertTrue(options["chargen-rfc-udp"])
        self.assertFalse(self.parse("--time=1237")["access"].active)

    def test_mistakes(self) -> None:
        """A bad network, rate or quotes file is one UsageError naming the option."""
        for args, message in (
            (("--allow=10.0.0.300",), "--allow=10.0.0.300: "),
            (("--deny=",), "--deny=: empty"),
            (("--connection-rate=fast",), "--connection-rate: 'fast' is not a number"),
            (("--connection-burst=-1",), "--connection-burst: must be >= 0"),
            (("--qotd-file=/nonexistent/quotes",), "--qotd-file: /nonexistent/quotes: "),
        ):
            with self.assertRaisesRegex(usage.UsageError, "^" + message.replace(".", r"\.")):
                self.parse("--qotd=1217", *args)

    def test_help_says_chargen_udp_is_safe(self) -> None:
        """--help says a UDP chargen reply is never larger than its request, and the option."""
        text = str(Options())
        self.assertIn("never larger than", " ".join(text.split()))
        self.assertIn("--chargen-rfc-udp", text)


class ServingTests(SynchronousTestCase):
    """One twistd serving all four on bare ports (TCP and UDP, IPv4 and IPv6)."""

    ports: ClassVar[dict[str, int]]
    metrics_port: ClassVar[int]
    server: ClassVar[Twistd | None] = None

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)
        if ServingTests.server is None:
            # One server for the whole class (trial has no setUpClass); stopped at exit.
            cls = ServingTests
            cls.ports = {name: free_port() for name in ("discard", "chargen", "time", "qotd")}
            cls.metrics_port = free_port()
            work = tempfile.mkdtemp(prefix="netproto-quotes-")
            atexit.register(shutil.rmtree, work, True)
            quotes = Path(work) / "quotes"
            quotes.write_text(QUOTES)
            cls.server = Twistd(
                *(f"--{name}={port}" for name, port in cls.ports.items()),
                f"--qotd-file={quotes}",
                f"--metrics={cls.metrics_port}",
                listeners=17,
            )
            atexit.register(cls.server.stop)

    def hosts(self) -> list[str]:
        return ["127.0.0.1"] if IPV6_SKIP else ["127.0.0.1", "::1"]

    def test_nc_tcp(self) -> None:
        """nc over IPv4 and IPv6: the chargen stream, 4 bytes of time, a quote, discard."""
        if tool_skip_reason("nc"):
            self.skipTest(tool_skip_reason("nc"))
        for host in self.hosts():
            got = run(f"nc {host} {self.ports['chargen']} </dev/null | head -c 100000")
            self.assertEqual(got, stream_from(0, 100000))
            answer = run(f"nc -N {host} {self.ports['time']} </dev/null")
            self.assertLessEqual(abs(from_rfc868(answer, time.time())[0] - time.time()), 2)
            quote = run(f"nc -N {host} {self.ports['qotd']} </dev/null")
            self.assertIn(quote, (b"The first quote.\r\n", b"The second,\r\non two lines.\r\n"))
            sent = run(f"nc -N {host} {self.ports['discard']}", stdin=b"d" * 100000)
            self.assertEqual(sent, b"")

    def test_socat_udp(self) -> None:
        """socat over UDP, IPv4 and IPv6: chargen answers no more than asked, time 4 bytes."""
        if tool_skip_reason("socat"):
            self.skipTest(tool_skip_reason("socat"))
        for host in self.hosts():
            kind, where = ("UDP6", f"[{host}]") if ":" in host else ("UDP4", host)
            got = run(f"socat -T2 - {kind}:{where}:{self.ports['chargen']}", stdin=b"x" * 30)
            self.assertEqual(len(got), 30)
            self.assertTrue(check_stream(got))
            answer = run(f"socat -T2 - {kind}:{where}:{self.ports['time']}", stdin=b"?")
            self.assertEqual(len(answer), 4)
            quote = run(f"socat -T2 - {kind}:{where}:{self.ports['qotd']}", stdin=b"?")
            self.assertTrue(quote.endswith(b"\r\n"))
            self.assertEqual(
                run(f"socat -T0.3 - {kind}:{where}:{self.ports['discard']}", b"x"), b""
            )

    def test_own_commands(self) -> None:
        """netproto chargen/time/qotd/discard, TCP and UDP, IPv4 and IPv6."""
        hosts = self.hosts()
        six = "[::1]" if len(hosts) > 1 else "127.0.0.1"
        p = self.ports
        got = run_cli("chargen", "--json", "--count", "1M", f"127.0.0.1:{p['chargen']}")
        self.assertEqual(got.returncode, 0, got.stderr)
        record = json.loads(got.stdout)
        self.assertEqual((record["bytes"], record["rfc864"]), (1 << 20, True))
        got = run_cli("chargen", "--udp", "--count", "20", f"{six}:{p['chargen']}")
        self.assertEqual((got.returncode, len(got.stdout)), (0, 20), got.stderr)
        for transport in ((), ("--udp",)):
            got = run_cli("time", "--json", *transport, f"{six}:{p['time']}")
            self.assertEqual(got.returncode, 0, got.stderr)
            record = json.loads(got.stdout)
            self.assertEqual(record["era"], 0)
            self.assertLessEqual(abs(record["offset"]), 1.5)
        got = run_cli("qotd", "--udp", f"127.0.0.1:{p['qotd']}")
        self.assertEqual(got.returncode, 0, got.stderr)
        got = run_cli("discard", "--count", "1M", f"{six}:{p['discard']}")
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertIn("1048576 bytes discarded", got.stdout)
        got = run_cli("discard", "--udp", f"127.0.0.1:{p['discard']}", "hi")
        self.assertEqual(got.returncode, 0, got.stderr)

    def test_counted_per_service(self) -> None:
        """The metrics count each service on its own, TCP and UDP."""
        udp_exchange("127.0.0.1", self.ports["time"], b"")
        with socket.create_connection(("127.0.0.1", self.ports["discard"])) as c:
            c.sendall(b"x" * 1000)
            c.shutdown(socket.SHUT_WR)
            c.recv(1)
        deadline = time.monotonic() + 10
        while True:
            values = metrics(self.metrics_port)
            if values.get("tcp_bytes_received{discard}", 0) >= 1000 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(values["udp_replies_sent{time}"], 1)
        self.assertGreaterEqual(values["tcp_bytes_received{discard}"], 1000)


class AccessThroughPluginTests(SynchronousTestCase):
    """--deny through twistd: refused on one address, served on another, counted."""

    def setUp(self) -> None:
        reason = _skip() or IPV6_SKIP
        if reason:
            self.skipTest(reason)

    def test_deny_ipv4_serve_ipv6(self) -> None:
        """--deny=127.0.0.0/8: IPv4 TCP and UDP get nothing; ::1 is served."""
        port, metrics_port = free_port(), free_port()
        server = Twistd(
            f"--time={port}", "--deny=127.0.0.0/8", f"--metrics={metrics_port}", listeners=5
        )
        self.addCleanup(server.stop)
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.settimeout(5)
            try:
                self.assertEqual(c.recv(10), b"")
            except ConnectionResetError:
                pass
        with self.assertRaises(socket.timeout):
            udp_exchange("127.0.0.1", port, b"", timeout=0.5)
        with socket.create_connection(("::1", port)) as c:
            c.settimeout(5)
            self.assertEqual(len(c.recv(10)), 4)
        self.assertEqual(len(udp_exchange("::1", port, b"")), 4)
        values = metrics(metrics_port)
        self.assertEqual(values["tcp_refused_access{time}"], 1)
        self.assertEqual(values["udp_refused_access{time}"], 1)


_XINETD_CONF = """
defaults
{{
    instances = 60
    cps = 10000 1
}}
service chargen
{{
    type = INTERNAL UNLISTED
    id = chargen-stream
    socket_type = stream
    protocol = tcp
    port = {chargen}
    bind = 127.0.0.1
    wait = no
    user = root
}}
service time
{{
    type = INTERNAL UNLISTED
    id = time-dgram
    socket_type = dgram
    protocol = udp
    port = {time}
    bind = 127.0.0.1
    wait = yes
    user = root
}}
"""


class XinetdSideBySideTests(SynchronousTestCase):
    """xinetd's built-in chargen and time beside ours."""

    def setUp(self) -> None:
        reason = _skip() or tool_skip_reason("xinetd") or root_skip_reason()
        if reason:
            self.skipTest(reason)

    def test_chargen_and_time(self) -> None:
        """The first 22 lines agree (xinetd's 93-character ring drifts at line 22, ours is
        RFC 864's 95); the two times agree within a second."""
        work = tempfile.mkdtemp(prefix="netproto-xinetd-")
        self.addCleanup(shutil.rmtree, work, True)
        theirs = {"chargen": free_port(), "time": free_port()}
        conf = Path(work) / "xinetd.conf"
        conf.write_text(_XINETD_CONF.format(**theirs))
        xinetd = subprocess.Popen(
            ["xinetd", "-dontfork", "-filelog", f"{work}/log", "-f", str(conf), "-pidfile", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(lambda: (xinetd.send_signal(signal.SIGTERM), xinetd.wait(10)))
        ours = {"chargen": free_port(), "time": free_port()}
        server = Twistd(
            f"--chargen=tcp:{ours['chargen']}:interface=127.0.0.1",
            f"--time=udp:{ours['time']}:interface=127.0.0.1",
            listeners=2,
        )
        self.addCleanup(server.stop)
        deadline = time.monotonic() + 10
        while "Started working" not in _read(f"{work}/log"):
            self.assertLess(time.monotonic(), deadline, _read(f"{work}/log"))
            time.sleep(0.05)
        lines = 40 * 74
        got = {}
        for name, port in (("xinetd", theirs["chargen"]), ("netproto", ours["chargen"])):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                data = b""
                while len(data) < lines:
                    chunk = c.recv(lines - len(data))
                    if not chunk:
                        break
                    data += chunk
            got[name] = data
        self.assertEqual(got["netproto"], stream_from(0, lines))
        self.assertEqual(got["xinetd"][: 22 * 74], got["netproto"][: 22 * 74])
        self.assertNotEqual(got["xinetd"][22 * 74 : 23 * 74], got["netproto"][22 * 74 : 23 * 74])
        seconds = []
        for port in (theirs["time"], ours["time"]):
            (value,) = struct.unpack("!I", udp_exchange("127.0.0.1", port, b"\n"))
            seconds.append(value)
        self.assertLessEqual(abs(seconds[0] - seconds[1]), 1)
        self.assertLessEqual(abs(seconds[1] - EPOCH_OFFSET - time.time()), 2)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


_NETNS_SCRIPT = r"""
import json, socket, struct, subprocess, sys, time
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
twistd, extra = sys.argv[1], sys.argv[2:]
log = open("twistd.log", "wb")
proc = subprocess.Popen([twistd, "-n", "--pidfile=", *extra, "netproto", "--discard=9",
                         "--chargen=19", "--time=37", "--qotd=17"],
                        stdout=log, stderr=subprocess.STDOUT)
result = {}
try:
    deadline = time.monotonic() + 15
    while open("twistd.log").read().count(" starting on ") < 16:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("twistd did not start:\n" + open("twistd.log").read())
        time.sleep(0.05)
    time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", 19), timeout=5) as c:
        result["chargen"] = c.recv(74).decode()
    with socket.create_connection(("::1", 37), timeout=5) as c:
        result["time"] = len(c.recv(10))
    with socket.create_connection(("127.0.0.1", 17), timeout=5) as c:
        result["qotd"] = c.recv(600).decode()
    with socket.create_connection(("127.0.0.1", 9), timeout=5) as c:
        c.sendall(b"x" * 1000)
        c.shutdown(socket.SHUT_WR)
        result["discard"] = c.recv(10).decode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(b"abc", ("127.0.0.1", 19))
        result["chargen_udp"] = u.recvfrom(100)[0].decode()
    status = open(f"/proc/{proc.pid}/status").read()
    result["uid"] = [l for l in status.splitlines() if l.startswith("Uid:")][0].split()[1:]
finally:
    proc.terminate()
    proc.wait(10)
    result["log"] = open("twistd.log").read()
print(json.dumps(result))
"""


class PrivilegeTests(SynchronousTestCase):
    """Ports 9, 19, 37 and 17 as root in a private network namespace, then --uid nobody."""

    def setUp(self) -> None:
        reason = _skip() or root_skip_reason() or tool_skip_reason("unshare")
        if reason:
            self.skipTest(reason)

    def test_drop_to_nobody(self) -> None:
        """Bound as root, then serving all four as uid 65534."""
        assert TWISTD is not None
        work = tempfile.mkdtemp(prefix="netproto-netns-")
        self.addCleanup(shutil.rmtree, work, True)
        done = subprocess.run(
            [
                "unshare",
                "-n",
                sys.executable,
                "-c",
                _NETNS_SCRIPT,
                TWISTD,
                "--uid",
                "nobody",
                "--gid",
                "nogroup",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=work,
            check=False,
        )
        self.assertEqual(done.returncode, 0, done.stderr + done.stdout)
        seen: dict[str, Any] = json.loads(done.stdout)
        nobody = str(pwd.getpwnam("nobody").pw_uid)
        self.assertEqual(seen["uid"], [nobody] * 4)
        self.assertEqual(seen["chargen"], stream_from(0, 74).decode())
        self.assertEqual(seen["time"], 4)
        self.assertTrue(seen["qotd"].endswith("\r\n"))
        self.assertEqual((seen["discard"], seen["chargen_udp"]), ("", stream_from(0, 3).decode()))
        self.assertNotIn("running as root", seen["log"])


class SystemdTests(SynchronousTestCase):
    """Socket activation serves the new services as it serves echo."""

    def setUp(self) -> None:
        reason = _skip()
        if reason:
            self.skipTest(reason)

    def test_chargen_tcp_and_time_udp(self) -> None:
        """An inherited TCP socket serves chargen, an inherited UDP socket serves time."""
        from tests.test_tap_live import _LAUNCHER

        port = free_port()
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(tcp.close)
        tcp.bind(("127.0.0.1", port))
        tcp.listen(50)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(udp.close)
        udp.bind(("127.0.0.1", port))
        server = Twistd(
            "--chargen=systemd:domain=INET:index=0",
            "--time=systemd:domain=INET:index=1",
            listeners=2,
            prefix=(sys.executable, "-c", _LAUNCHER, str(tcp.fileno()), str(udp.fileno()), "--"),
            pass_fds=(tcp.fileno(), udp.fileno()),
        )
        self.addCleanup(server.stop)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            got = b""
            while len(got) < 1000:
                got += c.recv(1000 - len(got))
        self.assertEqual(got, stream_from(0, 1000))
        answer = udp_exchange("127.0.0.1", port, b"")
        self.assertLessEqual(abs(from_rfc868(answer, time.time())[0] - time.time()), 2)
