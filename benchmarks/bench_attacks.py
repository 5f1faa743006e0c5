"""
Benchmark: the memory of ``twistd netproto --echo`` under stalled writers,
with today's bounds (``--write-high-water=16384 --buffer-budget=16777216``,
the defaults) against the unbounded queues netproto had before them
(``--write-high-water=0 --buffer-budget=0``: Twisted's 64 KiB per connection,
no budget), interleaved (A B A B) in the same run.

1. *stall*: N peers connect (from 127.0.0.1, a 4 KiB receive buffer each),
   send as fast as they can and never read, until no peer can send more for
   a second; the server's RSS growth is sampled throughout (peak) and after.
2. *leave*: they reset their connections; RSS once the server has closed
   them all ("after").
3. *cycles*: C rounds of 50 such peers, each round ended with resets; the
   RSS growth after every round (min, max, last).

Both run with ``--sweep-interval=1``, and RSS after peers leave is read 1.5 s
after the server closed them: the sweep that notices an episode ended gives
the freed memory back (``malloc_trim``). The server's CPU seconds for the
whole run are shown beside it.

    .venv/bin/python benchmarks/bench_attacks.py [--peers 1000] [--cycles 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SETTLE = 1.5
"""Seconds after the last connection closed before RSS is read: one sweep (1 s) and some."""
CONFIGS = {
    "bounded": (),
    "unbounded": ("--write-high-water=0", "--buffer-budget=0"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class Server:
    """One twistd netproto echo on 127.0.0.1."""

    def __init__(self, extra: tuple[str, ...]) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bench-attacks-")
        self.proc = subprocess.Popen(
            [
                str(BIN / "twistd"),
                "-n",
                "--pidfile=",
                f"--logfile={self.dir}/twistd.log",
                "netproto",
                f"--echo=tcp:{self.port}:interface=127.0.0.1",
                "--max-connections-per-peer=0",
                "--sweep-interval=1",
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            cwd=self.dir,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("twistd did not start") from None
                time.sleep(0.05)
        self.wait_connections(0)

    def rss(self) -> int:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", text)
        assert match is not None
        return int(match.group(1)) * 1024

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def wait_connections(self, n: int, timeout: float = 60) -> None:
        """Wait until the server holds *n* connections (fds above its idle count)."""
        if not hasattr(self, "base_fds"):
            time.sleep(0.3)
            self.base_fds = self.fds()
        deadline = time.monotonic() + timeout
        while self.fds() - self.base_fds != n and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def stall(server: Server, peers: int, sample: list[int]) -> list[socket.socket]:
    """*peers* non-reading senders, pumped until none can send for 1 s."""
    sockets = []
    for _ in range(peers):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", server.port))
        s.setblocking(False)
        sockets.append(s)
    blob = b"x" * 65536
    quiet_since = time.monotonic()
    deadline = time.monotonic() + 120
    cpu, cpu_at = server.cpu(), time.monotonic()
    busy = True
    while (busy or time.monotonic() - quiet_since < 1.0) and time.monotonic() < deadline:
        moved = 0
        for s in sockets:
            try:
                moved += s.send(blob)
            except OSError:
                pass
        if moved:
            quiet_since = time.monotonic()
        else:
            time.sleep(0.01)
        sample.append(server.rss())
        if time.monotonic() - cpu_at >= 0.5:
            # The server still working means it may still read: keep pushing.
            now = server.cpu()
            busy, cpu, cpu_at = now - cpu > 0.02, now, time.monotonic()
    return sockets


def reset(sockets: list[socket.socket]) -> None:
    for s in sockets:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def run(name: str, peers: int, cycles: int) -> dict[str, float]:
    server = Server(CONFIGS[name])
    try:
        cpu0 = server.cpu()
        base = server.rss()
        sample: list[int] = []
        sockets = stall(server, peers, sample)
        server.wait_connections(peers, 30)
        held = server.rss()
        reset(sockets)
        server.wait_connections(0)
        time.sleep(SETTLE)
        after = server.rss()
        deltas = []
        for _ in range(cycles):
            sockets = stall(server, 50, [])
            reset(sockets)
            server.wait_connections(0)
            time.sleep(SETTLE)
            deltas.append(server.rss() - base)
        mib = 1 << 20
        return {
            "peak": (max([*sample, held]) - base) / mib,
            "held": (held - base) / mib,
            "after": (after - base) / mib,
            "cyc_min": min(deltas) / mib if deltas else 0.0,
            "cyc_max": max(deltas) / mib if deltas else 0.0,
            "cyc_last": deltas[-1] / mib if deltas else 0.0,
            "cpu": server.cpu() - cpu0,
        }
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"{args.peers} stalled writers, then {args.cycles} cycles of 50; RSS growth in MiB")
    print(
        f"{'config':10} {'peak':>7} {'held':>7} {'after':>7} {'cyc min':>8} {'cyc max':>8} "
        f"{'cyc last':>8} {'cpu s':>6}"
    )
    results: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGS}
    for _ in range(args.rounds):
        for name in CONFIGS:
            r = run(name, args.peers, args.cycles)
            results[name].append(r)
            print(
                f"{name:10} {r['peak']:7.1f} {r['held']:7.1f} {r['after']:7.1f} "
                f"{r['cyc_min']:8.1f} {r['cyc_max']:8.1f} {r['cyc_last']:8.1f} {r['cpu']:6.2f}",
                flush=True,
            )
    for key in ("peak", "after", "cyc_max"):
        ratios = [
            b[key] / u[key] if u[key] else float("nan")
            for b, u in zip(results["bounded"], results["unbounded"], strict=True)
        ]
        print(f"bounded/unbounded {key}: " + ", ".join(f"{x:.2f}" for x in ratios))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
