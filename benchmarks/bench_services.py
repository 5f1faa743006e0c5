"""
Benchmark: netproto's daytime and echo (all protections on) against stock
Twisted (``twisted.protocols.wire.Echo``, a correct minimal daytime), asyncio
and uvloop (when installed), on loopback.

Each server runs in its own process pinned to CPU 0; the load generator runs
in another process pinned to CPU 1, with raw non-blocking sockets and epoll.
Runs are interleaved (A B C D, A B C D, ...). Each figure is the median over
the rounds; each ratio is the median of the ratios of runs in the same round
(next to each other in time). Rates and CPU use count the timed window only
(connections are set up, and for echo accepted and answered once, before it
starts; they are closed after it ends). The server's CPU use during the run is shown: a
server well below 100% means the generator or the machine (other processes on
the same cores) was the bottleneck, not the server. ``np/tw/cpu`` compares
the work done per second of *server CPU* (netproto / stock Twisted), which a
busy shared machine disturbs much less than the raw rate. Last, each
server's resident memory growth under a TCP echo client that writes and never
reads (up to 256 MiB, or until the server stops taking bytes for a second).

    .venv/bin/python benchmarks/bench_services.py [--duration 2] [--rounds 3] [--loadgen c|python]

The load generator is the C one of ``benchmarks/_loadgen.c`` by default
(``--loadgen c``, built with ``cc -O2`` by ``loadgen.py``; its timed window
follows a 0.3 s warm-up), else (``--loadgen python``, or no C compiler) the
Python one below, which costs more CPU per request than the servers do.

netproto runs as an operator would run it: ``twistd -n netproto --echo=P
--daytime=P`` (dual-stack TCP and UDP sockets on ``::``, so every datagram
goes through the destination check), every protection on (connection caps, idle and write-stall
sweeps, UDP source rules, per-source and global token buckets, the
destination check). Only the UDP rates are raised (``--udp-rate``,
``--udp-global-rate`` and bursts to 10^9) so that a single benchmarking source
is not rate-limited: the buckets are still consulted for every datagram.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVER_CPU = 0
LOAD_CPU = 1


# --- the peer servers ---------------------------------------------------------------


def serve_twisted(tcp_echo: int, daytime: int, udp_echo: int) -> None:
    """Stock Twisted: wire.Echo on TCP, a plain DatagramProtocol echo, a minimal daytime."""
    from twisted.internet import protocol, reactor
    from twisted.protocols import wire

    class Daytime(protocol.Protocol):
        def connectionMade(self) -> None:
            self.transport.write(time.ctime().encode("ascii") + b"\r\n")
            self.transport.loseConnection()

    class UDPEcho(protocol.DatagramProtocol):
        def datagramReceived(self, data: bytes, addr: object) -> None:
            self.transport.write(data, addr)

    class UDPDaytime(protocol.DatagramProtocol):
        def datagramReceived(self, data: bytes, addr: object) -> None:
            self.transport.write(time.ctime().encode("ascii") + b"\r\n", addr)

    reactor.listenTCP(
        tcp_echo, protocol.Factory.forProtocol(wire.Echo), backlog=1024, interface="127.0.0.1"
    )
    reactor.listenTCP(
        daytime, protocol.Factory.forProtocol(Daytime), backlog=1024, interface="127.0.0.1"
    )
    reactor.listenUDP(udp_echo, UDPEcho(), interface="127.0.0.1", maxPacketSize=65535)
    reactor.listenUDP(daytime, UDPDaytime(), interface="127.0.0.1", maxPacketSize=65535)
    reactor.run()


def serve_asyncio(tcp_echo: int, daytime: int, udp_echo: int, use_uvloop: bool) -> None:
    """asyncio (or uvloop) echo and daytime servers."""

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    class Daytime(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transport.write(time.ctime().encode("ascii") + b"\r\n")  # type: ignore[attr-defined]
            transport.close()

    class UDPEcho(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(data, addr)

    class UDPDaytime(UDPEcho):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(time.ctime().encode("ascii") + b"\r\n", addr)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(Echo, "127.0.0.1", tcp_echo, backlog=1024)
        await loop.create_server(Daytime, "127.0.0.1", daytime, backlog=1024)
        await loop.create_datagram_endpoint(UDPEcho, local_addr=("127.0.0.1", udp_echo))
        await loop.create_datagram_endpoint(UDPDaytime, local_addr=("127.0.0.1", daytime))
        await asyncio.Event().wait()

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def free_port() -> int:
    """A port free for TCP and UDP on 127.0.0.1 and ::."""
    while True:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::", 0))
            number: int = probe.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as other:
                other.bind(("::", number))
        except OSError:
            continue
        return number


@dataclass
class Server:
    """A running server process and its ports."""

    name: str
    process: subprocess.Popen[bytes]
    tcp_echo: int
    daytime: int
    udp_echo: int
    workdir: str = ""

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss(self) -> int:
        """Resident memory of the server process, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        """Terminate the process."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(pid, {cpu})


def start_server(name: str, baseline: str | None = None) -> Server:
    """
    Start server *name* pinned to the server CPU; wait until it accepts
    connections. ``baseline`` is netproto as found in the checkout *baseline*
    (another commit's work tree), run the same way.
    """
    echo, daytime = free_port(), free_port()
    udp = echo
    env = None
    if name in ("netproto", "baseline"):
        big = "1000000000"
        if name == "baseline":
            assert baseline is not None
            env = {**os.environ, "PYTHONPATH": str(Path(baseline).resolve())}
        argv = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            "--logfile=/dev/null",
            "netproto",
            f"--echo={echo}",
            f"--daytime={daytime}",
            f"--udp-rate={big}",
            f"--udp-burst={big}",
            f"--udp-global-rate={big}",
            f"--udp-global-burst={big}",
        ]
    else:
        argv = [sys.executable, __file__, "--serve", name, str(echo), str(daytime), str(udp)]
    # An empty directory of its own: ``python -c`` puts the working directory
    # first on sys.path, and a stray ``netproto`` in /tmp would be imported.
    workdir = tempfile.mkdtemp(prefix="bench-services-")
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, cwd=workdir, env=env)
    _pin(process.pid, SERVER_CPU)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", echo), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} server did not start") from None
            time.sleep(0.1)
    return Server(name, process, echo, daytime, udp, workdir)


# --- the load generator ---------------------------------------------------------------

_marks: list[Callable[[str], None]] = []


def _mark(what: str) -> None:
    """The timed window starts or ends now (told to the parent, which samples server CPU)."""
    for tell in _marks:
        tell(what)


def _bound(family: int, kind: int, index: int) -> socket.socket:
    """A socket bound to a distinct loopback source address (spreads per-peer state)."""
    sock = socket.socket(family, kind)
    sock.bind((f"127.1.{(index >> 8) & 255}.{index & 255 or 1}", 0))
    return sock


def load_tcp_pingpong(port: int, duration: float, conns: int, size: int) -> tuple[int, int]:
    """N connections each sending *size* bytes and waiting for them back; (requests, bytes)."""
    payload = b"x" * size
    socks = []
    for _ in range(conns):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        socks.append(sock)
    poller = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    pending = dict.fromkeys(by_fd, 0)
    # One exchange on each connection before the clock starts: every
    # connection accepted by the server and live (not waiting in its backlog).
    for sock in socks:
        sock.setblocking(True)
        sock.sendall(payload)
        got = 0
        while got < size:
            got += len(sock.recv(65536))
        sock.setblocking(False)
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    _mark("start")
    for fd, sock in by_fd.items():
        sock.send(payload)
        pending[fd] = size
    done = 0
    end = time.monotonic() + duration
    poll = poller.poll
    while True:
        for fd, _event in poll(0.5):
            sock = by_fd[fd]
            got = len(sock.recv(65536))
            left = pending[fd] - got
            if left <= 0:
                done += 1
                sock.send(payload)
                left += size
            pending[fd] = left
        if time.monotonic() >= end:
            break
    _mark("end")
    for sock in socks:
        sock.close()
    return done, done * size


def load_tcp_stream(port: int, duration: float) -> tuple[int, int]:
    """One connection writing 256 KiB blocks while reading the echo; (0, bytes echoed)."""
    block = b"s" * (256 * 1024)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    received = 0
    sent = 0
    end = time.monotonic() + duration
    poller = select.epoll()
    poller.register(sock.fileno(), select.EPOLLIN | select.EPOLLOUT)
    _mark("start")
    while time.monotonic() < end:
        for _fd, event in poller.poll(0.5):
            if event & select.EPOLLIN:
                while True:
                    try:
                        chunk = sock.recv(1 << 20)
                    except BlockingIOError:
                        break
                    received += len(chunk)
            if event & select.EPOLLOUT and sent - received < 4 << 20:
                try:
                    sent += sock.send(block)
                except BlockingIOError:
                    pass
    _mark("end")
    sock.close()
    return 0, received


def load_daytime(port: int, duration: float, parallel: int = 16) -> tuple[int, int]:
    """Connections opened *parallel* at a time, each read to EOF; (connections, bytes)."""
    poller = select.epoll()
    open_socks: dict[int, socket.socket] = {}
    counter = 0
    done = 0
    total = 0

    def connect() -> None:
        nonlocal counter
        counter += 1
        sock = _bound(socket.AF_INET, socket.SOCK_STREAM, counter % 60000)
        sock.setblocking(False)
        try:
            sock.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        open_socks[sock.fileno()] = sock
        poller.register(sock.fileno(), select.EPOLLIN)

    _mark("start")
    for _ in range(parallel):
        connect()
    end = time.monotonic() + duration
    while time.monotonic() < end:
        for fd, _event in poller.poll(0.5):
            sock = open_socks[fd]
            try:
                chunk = sock.recv(4096)
            except OSError:
                chunk = b""
            total += len(chunk)
            if not chunk:
                poller.unregister(fd)
                del open_socks[fd]
                sock.close()
                done += 1
                connect()
    _mark("end")
    for sock in open_socks.values():
        sock.close()
    return done, total


def load_udp(
    port: int, duration: float, size: int, sockets: int = 16, window: int = 8
) -> tuple[int, int]:
    """*sockets* UDP sockets, *window* datagrams in flight each, each answer sending the next.

    Datagrams lost (a full buffer somewhere) are replaced after 50 ms of silence.
    """
    payload = b"u" * size
    poller = select.epoll()
    socks = {}
    for i in range(sockets):
        sock = _bound(socket.AF_INET, socket.SOCK_DGRAM, i + 1)
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        socks[sock.fileno()] = sock
        poller.register(sock.fileno(), select.EPOLLIN)
        for _ in range(window):
            sock.send(payload)
    _mark("start")
    done = 0
    end = time.monotonic() + duration
    last_progress = time.monotonic()
    while True:
        events = poller.poll(0.05)
        for fd, _event in events:
            sock = socks[fd]
            while True:
                try:
                    sock.recv(65536)
                except OSError:
                    break
                done += 1
                try:
                    sock.send(payload)
                except OSError:
                    pass
        now = time.monotonic()
        if events:
            last_progress = now
        elif now - last_progress > 0.05:  # every datagram in flight was lost: resend
            for sock in socks.values():
                for _ in range(window):
                    sock.send(payload)
            last_progress = now
        if now >= end:
            break
    _mark("end")
    for sock in socks.values():
        sock.close()
    return done, done * size


def nonreader_growth(server: Server, total: int = 256 << 20) -> tuple[float, float]:
    """
    A client that writes to TCP echo and never reads, until *total* bytes went
    or the server stopped taking them for a second; (MiB written, MiB the
    server's resident memory grew by).
    """
    before = server.rss()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.tcp_echo))
    sock.setblocking(False)
    block = b"n" * 65536
    sent = 0
    last = time.monotonic()
    while sent < total and time.monotonic() - last < 1.0:
        try:
            sent += sock.send(block)
            last = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    time.sleep(0.5)
    grown = server.rss() - before
    sock.close()
    return sent / (1 << 20), grown / (1 << 20)


def _load_child(
    conn: multiprocessing.connection.Connection, job: Callable[[], tuple[int, int]]
) -> None:
    _pin(0, LOAD_CPU)
    window: dict[str, tuple[float, float]] = {}

    def tell(what: str) -> None:
        times = os.times()
        window[what] = (time.monotonic(), times.user + times.system)
        conn.send(what)

    _marks.append(tell)
    result = job()
    (start, cpu_start), (end, cpu_end) = window["start"], window["end"]
    conn.send((*result, end - start, cpu_end - cpu_start))


@dataclass
class Measure:
    """One run: requests (or bytes) per second and CPU use of both sides."""

    rate: float
    server_cpu: float
    load_cpu: float


def measure(
    server: Server, job: Callable[[], tuple[int, int]], duration: float, by_bytes: bool
) -> Measure:
    """Run *job* in a pinned child process against *server*; return rates and CPU use."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_load_child, args=(child, job))
    process.start()
    # Only the timed window counts: connection set-up and teardown, and the
    # fork, are outside it, for the server's CPU as for the rate.
    assert parent.recv() == "start"
    cpu_before, start = server.cpu_seconds(), time.monotonic()
    assert parent.recv() == "end"
    cpu_after, elapsed = server.cpu_seconds(), time.monotonic() - start
    count, nbytes, window, load_cpu = parent.recv()
    process.join()
    server_cpu = (cpu_after - cpu_before) / elapsed
    value = nbytes / 1e6 if by_bytes else count
    return Measure(value / window, server_cpu, load_cpu / window)


WARMUP = 0.3
"""Seconds the C generator runs before its timed window."""


def measure_c(
    server: Server, spec: tuple[str, int, dict[str, Any]], duration: float, by_bytes: bool
) -> Measure:
    """Run the C generator (pinned) as *spec* says against *server*; rates and CPU use."""
    mode, port, options = spec
    marks: dict[str, tuple[float, float]] = {}

    def mark(what: str) -> None:
        marks[what] = (server.cpu_seconds(), time.monotonic())

    result = loadgen.run(
        mode, port, duration=duration, warmup=WARMUP, cpu=LOAD_CPU, on_mark=mark, **options
    )
    (cpu_before, start), (cpu_after, end) = marks["start"], marks["end"]
    server_cpu = (cpu_after - cpu_before) / (end - start)
    value = result.bytes / 1e6 if by_bytes else result.requests
    return Measure(value / result.seconds, server_cpu, result.cpu / result.seconds)


C_LOADS: dict[str, Callable[[Server], tuple[str, int, dict[str, Any]]]] = {
    "TCP echo 1 KiB ping-pong, 1 conn": lambda s: ("echo", s.tcp_echo, {"conns": 1, "size": 1024}),
    "TCP echo 1 KiB ping-pong, 10 conns": lambda s: (
        "echo",
        s.tcp_echo,
        {"conns": 10, "size": 1024},
    ),
    "TCP echo 1 KiB ping-pong, 100 conns": lambda s: (
        "echo",
        s.tcp_echo,
        {"conns": 100, "size": 1024},
    ),
    "TCP echo streaming": lambda s: ("stream", s.tcp_echo, {"conns": 1, "size": 256 * 1024}),
    # As load_daytime: 16 at a time, each from its own 127.1.x.y source.
    "TCP daytime": lambda s: ("daytime", s.daytime, {"parallel": 16, "sources": 60000}),
    # As load_udp: 16 sockets on 16 source addresses, 8 datagrams in flight on each.
    "UDP echo 64 B": lambda s: (
        "udp",
        s.udp_echo,
        {"size": 64, "sockets": 16, "window": 8, "sources": 16},
    ),
    "UDP echo 1 KiB": lambda s: (
        "udp",
        s.udp_echo,
        {"size": 1024, "sockets": 16, "window": 8, "sources": 16},
    ),
    "UDP daytime": lambda s: (
        "udp",
        s.daytime,
        {"size": 0, "sockets": 16, "window": 8, "sources": 16},
    ),
}
"""The C generator's load for each row (the same loads as the Python generator's)."""


ROWS: list[tuple[str, str, Callable[[Server, float], Callable[[], tuple[int, int]]], bool]] = [
    (
        "TCP echo 1 KiB ping-pong, 1 conn",
        "req/s",
        lambda s, d: lambda: load_tcp_pingpong(s.tcp_echo, d, 1, 1024),
        False,
    ),
    (
        "TCP echo 1 KiB ping-pong, 10 conns",
        "req/s",
        lambda s, d: lambda: load_tcp_pingpong(s.tcp_echo, d, 10, 1024),
        False,
    ),
    (
        "TCP echo 1 KiB ping-pong, 100 conns",
        "req/s",
        lambda s, d: lambda: load_tcp_pingpong(s.tcp_echo, d, 100, 1024),
        False,
    ),
    ("TCP echo streaming", "MB/s", lambda s, d: lambda: load_tcp_stream(s.tcp_echo, d), True),
    ("TCP daytime", "conn/s", lambda s, d: lambda: load_daytime(s.daytime, d), False),
    ("UDP echo 64 B", "req/s", lambda s, d: lambda: load_udp(s.udp_echo, d, 64), False),
    ("UDP echo 1 KiB", "req/s", lambda s, d: lambda: load_udp(s.udp_echo, d, 1024), False),
    ("UDP daytime", "req/s", lambda s, d: lambda: load_udp(s.daytime, d, 0), False),
]


def main() -> int:
    """Run every row, interleaving the servers; print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per row")
    parser.add_argument("--only", default="", help="run rows whose name contains this")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run netproto from the checkout DIR (another commit's work tree)",
    )
    parser.add_argument(
        "--servers",
        metavar="LIST",
        default="",
        help="comma-separated peers to run beside netproto (default: all of "
        "baseline, twisted, asyncio, uvloop that are available)",
    )
    loadgen.add_option(parser)
    parser.add_argument(
        "--serve", nargs=4, metavar=("KIND", "ECHO", "DAYTIME", "UDP"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        kind, echo, daytime, udp = args.serve
        if kind == "twisted":
            serve_twisted(int(echo), int(daytime), int(udp))
        else:
            serve_asyncio(int(echo), int(daytime), int(udp), kind == "uvloop")
        return 0

    names = ["netproto"]
    if args.baseline:
        names.append("baseline")
    names += ["twisted", "asyncio"]
    try:
        import uvloop  # noqa: F401

        names.append("uvloop")
    except ImportError:
        print("uvloop is not installed: skipped (pip install uvloop)", file=sys.stderr)
    if args.servers:
        wanted = args.servers.split(",")
        names = [n for n in names if n in wanted or n == "netproto"]
    peers = [n for n in names if n != "netproto"]
    generator = loadgen.choose(args.loadgen)
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    pinned = SERVER_CPU in cpus and LOAD_CPU in cpus
    print(
        f"# servers pinned to CPU {SERVER_CPU}, load generator to CPU {LOAD_CPU}"
        if pinned
        else "# fewer than 2 CPUs: not pinned"
    )
    print(
        f"# load generator: {'C (benchmarks/_loadgen.c)' if generator == 'c' else 'Python'}; "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    if args.baseline:
        print(f"# baseline: netproto from {args.baseline}")
    print(
        "# rates are medians; np/X is the median of netproto/X per round (rate), and in "
        "brackets per second of server CPU; us/req is server CPU per request"
    )
    servers = {name: start_server(name, args.baseline) for name in names}
    try:
        header = (
            f"{'benchmark':36} {'unit':>6} "
            + " ".join(f"{n:>9}" for n in names)
            + " "
            + " ".join(f"{'np/' + p[:4]:>14}" for p in peers)
            + "  us/req "
            + "/".join(names)
        )
        print(header)
        print("-" * len(header))
        for title, unit, make_job, by_bytes in ROWS:
            if args.only and args.only not in title:
                continue
            runs: dict[str, list[Measure]] = {name: [] for name in names}
            for _round in range(args.rounds):
                for name in names:
                    server = servers[name]
                    if generator == "c":
                        got = measure_c(server, C_LOADS[title](server), args.duration, by_bytes)
                    else:
                        got = measure(
                            server, make_job(server, args.duration), args.duration, by_bytes
                        )
                    runs[name].append(got)
                    time.sleep(0.2)
            rate = {name: median([m.rate for m in results]) for name, results in runs.items()}
            # Ratios of runs next to each other in time, then their median: the
            # other load on a shared machine changes between rounds, not within one.
            rounds = range(args.rounds)
            mine = runs["netproto"]
            ratios = []
            for peer in peers:
                theirs = runs[peer]
                by_rate = median(
                    [mine[i].rate / theirs[i].rate for i in rounds if theirs[i].rate]
                    or [float("nan")]
                )
                # (A round where a server used less than one clock tick, the
                # load generator having stalled, says nothing per CPU second.)
                by_cpu = median(
                    [
                        (mine[i].rate / mine[i].server_cpu)
                        / (theirs[i].rate / theirs[i].server_cpu)
                        for i in rounds
                        if mine[i].server_cpu and theirs[i].server_cpu and theirs[i].rate
                    ]
                    or [float("nan")]
                )
                ratios.append(f"{by_rate:6.2f} [{by_cpu:5.2f}]")
            per_request = "/".join(
                f"{median([m.server_cpu / m.rate for m in runs[n] if m.rate] or [0]) * 1e6:.1f}"
                for n in names
            )
            load = max(median([m.load_cpu for m in results]) for results in runs.values())
            cells = " ".join(
                f"{rate[n]:9.1f}" if unit == "MB/s" else f"{rate[n]:9.0f}" for n in names
            )
            print(
                f"{title:36} {unit:>6} {cells} "
                + " ".join(f"{r:>14}" for r in ratios)
                + f"  {per_request} (load gen {load * 100:.0f}%, "
                f"load avg {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        if not args.only or args.only in "non-reader":
            # Last: the peers without backpressure keep what they buffered.
            for name in names:
                wrote, grown = nonreader_growth(servers[name])
                print(
                    f"non-reader: {name:9} RSS +{grown:7.1f} MiB after the client wrote "
                    f"{wrote:.0f} MiB without reading",
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
