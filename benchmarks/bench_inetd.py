"""
Benchmark: netproto's TCP chargen and discard streaming against xinetd's
built-ins, on loopback, and the memory a non-reading chargen client costs.

netproto runs as an operator runs it (``twistd -n netproto --chargen=...
--discard=...``, every protection on); xinetd with ``type = INTERNAL`` chargen
and discard services. Each server is pinned to CPU 0, the load (plain sockets,
one connection at a time) to CPU 1. Runs are interleaved (netproto, xinetd,
netproto, xinetd, ...); each figure is the median over the rounds and each
ratio the median of the per-round ratios. Server CPU seconds per GiB are
shown beside the rates (xinetd's include the children it forks per
connection, reaped before they are read).

Memory: *clients* connections to netproto's chargen that never read (receive
buffer 4 KiB), held until the server has stopped writing to every one of them;
the server's RSS growth divided by the clients.

    .venv/bin/python benchmarks/bench_inetd.py [--duration 2] [--rounds 3] [--clients 50]

Needs xinetd (and root, as xinetd does) for the comparison; without it, only
netproto's figures are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

BIN = Path(sys.executable).parent
SERVER_CPU, LOAD_CPU = 0, 1
GIB = 1 << 30

XINETD_CONF = """
defaults
{{
    instances = UNLIMITED
    cps = 100000 1
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
service discard
{{
    type = INTERNAL UNLISTED
    id = discard-stream
    socket_type = stream
    protocol = tcp
    port = {discard}
    bind = 127.0.0.1
    wait = no
    user = root
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(pid, {cpu})


class Server:
    """A server process; its CPU time (children reaped included) and RSS."""

    def __init__(self, name: str, argv: list[str], ports: dict[str, int], work: str) -> None:
        self.name = name
        self.ports = ports
        self.process = subprocess.Popen(
            argv, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        pin(self.process.pid, SERVER_CPU)
        deadline = time.monotonic() + 15
        for port in ports.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise SystemExit(f"{name} did not start") from None
                    time.sleep(0.05)

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def chargen_load(port: int, duration: float) -> int:
    """Read the stream for *duration* seconds; bytes read."""
    buffer = bytearray(1 << 20)
    total = 0
    with socket.create_connection(("127.0.0.1", port)) as c:
        end = time.monotonic() + duration
        while time.monotonic() < end:
            for _ in range(64):
                n = c.recv_into(buffer)
                if not n:
                    return total
                total += n
    return total


def discard_load(port: int, duration: float) -> int:
    """Send for *duration* seconds, then half-close and wait for the close; bytes sent."""
    chunk = b"d" * (1 << 18)
    total = 0
    with socket.create_connection(("127.0.0.1", port)) as c:
        end = time.monotonic() + duration
        while time.monotonic() < end:
            for _ in range(16):
                total += c.send(chunk)
        c.shutdown(socket.SHUT_WR)
        c.settimeout(30)
        c.recv(1)
    return total


def measure(server: Server, service: str, duration: float) -> tuple[float, float]:
    """(GiB/s, server CPU seconds per GiB) for one run."""
    load = chargen_load if service == "chargen" else discard_load
    before_cpu = server.cpu()
    started = time.monotonic()
    moved = load(server.ports[service], duration)
    elapsed = time.monotonic() - started
    time.sleep(0.2)  # xinetd's child exits and is reaped: its CPU shows in cutime
    cpu = server.cpu() - before_cpu
    return moved / GIB / elapsed, cpu / (moved / GIB)


def non_readers(server: Server, clients: int) -> tuple[int, int]:
    """RSS before and after *clients* non-reading chargen connections fill their buffers."""
    time.sleep(0.5)
    before = server.rss()
    held = []
    for _ in range(clients):
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", server.ports["chargen"]))
        held.append(c)
    # Settled when two reads of the server's CPU, 0.5 s apart, show it idle.
    last = server.cpu()
    for _ in range(40):
        time.sleep(0.5)
        now = server.cpu()
        if now - last < 0.02:
            break
        last = now
    after = server.rss()
    for c in held:
        c.close()
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    pin(0, LOAD_CPU)
    work = tempfile.mkdtemp(prefix="bench-inetd-")
    servers: list[Server] = []
    try:
        ours = {"chargen": free_port(), "discard": free_port()}
        servers.append(
            Server(
                "netproto",
                [
                    str(BIN / "twistd"),
                    "-n",
                    "--pidfile=",
                    "netproto",
                    f"--chargen=tcp:{ours['chargen']}:interface=127.0.0.1",
                    f"--discard=tcp:{ours['discard']}:interface=127.0.0.1",
                ],
                ours,
                work,
            )
        )
        xinetd = shutil.which("xinetd")
        if xinetd and os.geteuid() == 0:
            theirs = {"chargen": free_port(), "discard": free_port()}
            conf = Path(work) / "xinetd.conf"
            conf.write_text(XINETD_CONF.format(**theirs))
            argv = [xinetd, "-dontfork", "-f", str(conf), "-pidfile", "", "-filelog", "/dev/null"]
            servers.append(Server("xinetd", argv, theirs, work))
        else:
            print("xinetd not installed (or not root): netproto's figures only")
        for service in ("chargen", "discard"):
            rates: dict[str, list[float]] = {s.name: [] for s in servers}
            cpus: dict[str, list[float]] = {s.name: [] for s in servers}
            ratios: list[float] = []
            for _ in range(args.rounds):
                round_rates = {}
                for server in servers:
                    rate, cpu = measure(server, service, args.duration)
                    rates[server.name].append(rate)
                    cpus[server.name].append(cpu)
                    round_rates[server.name] = rate
                if "xinetd" in round_rates:
                    ratios.append(round_rates["netproto"] / round_rates["xinetd"])
            print(f"TCP {service} streaming, one connection, {args.rounds} rounds:")
            for server in servers:
                print(
                    f"  {server.name:9s} {median(rates[server.name]):6.2f} GiB/s   "
                    f"server CPU {median(cpus[server.name]):5.2f} s/GiB"
                )
            if ratios:
                print(
                    f"  netproto/xinetd rate: {median(ratios):.2f}x (per-round: "
                    + ", ".join(f"{r:.2f}" for r in ratios)
                    + ")"
                )
        before, after = non_readers(servers[0], args.clients)
        grown = after - before
        print(
            f"non-reading chargen clients: {args.clients}; netproto RSS {before / 2**20:.1f} -> "
            f"{after / 2**20:.1f} MiB, {grown / args.clients / 1024:.1f} KiB per client"
        )
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
