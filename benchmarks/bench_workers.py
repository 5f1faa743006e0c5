"""
Benchmark: ``twistd netproto --workers N`` against one process (``--workers
1``), on loopback, interleaved (1 N 1 N ...), and the restart time of a
killed worker.

Every server runs as an operator would run it (``twistd -n netproto --echo=P
--daytime=P --metrics=M --workers=N``, every protection on, only the UDP
budgets raised so one benchmarking source is not rate-limited). Nothing is
pinned: the workers and the load generator (raw non-blocking sockets and
epoll, from ``bench_services.py``) share the machine's cores. For each row the
table gives the median rate over the rounds, the server's CPU (supervisor and
workers together, in cores), the requests served per second of server CPU,
the ratio of both to one worker measured in the same round, and each
worker's share of the requests (from the ``--metrics`` per-worker counters).

With more than two CPUs, ``--curve`` adds 4, 8, ... workers up to the CPUs
usable: the scaling curve.

    .venv/bin/python benchmarks/bench_workers.py [--duration 2] [--rounds 3] [--curve]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_services import (
    free_port,
    load_daytime,
    load_tcp_pingpong,
    load_udp,
)

_REQUESTS = re.compile(
    r'netproto_worker_requests_total\{worker="(\d+)",service="(\w+)",transport="(\w+)"\} (\d+)'
)
_SERVING = re.compile(r"netproto: worker (\d+) \(pid (\d+)\) serving")


@dataclass
class Server:
    """One twistd netproto with N workers."""

    workers: int
    process: subprocess.Popen[bytes]
    echo: int
    daytime: int
    metrics: int
    log: Path

    def tree(self) -> list[int]:
        """The twistd process and its children (the workers)."""
        pids = [self.process.pid]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                pids.append(int(entry.name))
        return pids

    def cpu_seconds(self) -> float:
        """User + system CPU of the supervisor and every live worker so far."""
        total = 0
        for pid in self.tree():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        return total / os.sysconf("SC_CLK_TCK")

    def per_worker(self, service: str, transport: str) -> dict[int, int]:
        """Requests served so far by each worker (1 worker: the process's own counters)."""
        for attempt in range(5):
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.metrics}/metrics", timeout=10
                ) as response:
                    text = response.read().decode()
                break
            except OSError:
                if attempt == 4 or self.process.poll() is not None:
                    raise
                time.sleep(0.2)
        if self.workers == 1:
            name = "tcp_connections" if transport == "tcp" else "udp_datagrams_received"
            match = re.search(rf'netproto_{name}_total\{{service="{service}"\}} (\d+)', text)
            return {1: int(match.group(1)) if match else 0}
        found = {w: 0 for w in range(1, self.workers + 1)}
        for worker, svc, trans, count in _REQUESTS.findall(text):
            if svc == service and trans == transport:
                found[int(worker)] = int(count)
        return found

    def stop(self) -> None:
        """SIGTERM; wait."""
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(workers: int, directory: Path) -> Server:
    """Start twistd netproto with *workers* workers; wait until every worker serves."""
    echo, daytime, metrics = free_port(), free_port(), free_port()
    big = "1000000000"
    log = directory / f"twistd-{workers}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            f"--logfile={log}",
            "netproto",
            f"--echo={echo}",
            f"--daytime={daytime}",
            f"--metrics={metrics}",
            f"--workers={workers}",
            f"--udp-rate={big}",
            f"--udp-burst={big}",
            f"--udp-global-rate={big}",
            f"--udp-global-burst={big}",
        ],
        stdin=subprocess.DEVNULL,
        cwd=directory,
    )
    server = Server(workers, process, echo, daytime, metrics, log)
    deadline = time.monotonic() + 60
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        ready = len(set(_SERVING.findall(text))) >= workers if workers > 1 else "echo on" in text
        if ready:
            return server
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"--workers={workers} did not start:\n{text}")
        time.sleep(0.1)


ROWS: list[tuple[str, str, str, Callable[[Server, float], tuple[int, int]]]] = [
    (
        "TCP echo 1 KiB ping-pong, 100 conns",
        "echo",
        "tcp",
        lambda s, d: load_tcp_pingpong(s.echo, d, 100, 1024),
    ),
    ("TCP daytime, 16 at a time", "daytime", "tcp", lambda s, d: load_daytime(s.daytime, d)),
    ("UDP echo 64 B", "echo", "udp", lambda s, d: load_udp(s.echo, d, 64)),
]


@dataclass
class Run:
    rate: float
    cpu: float
    shares: list[float]

    @property
    def per_cpu(self) -> float:
        return self.rate / self.cpu if self.cpu else 0.0


def run_one(server: Server, row: tuple[str, str, str, Any], duration: float) -> Run:
    """One measurement of *row* against *server*."""
    _name, service, transport, job = row
    served_before = server.per_worker(service, transport)
    cpu_before = server.cpu_seconds()
    began = time.monotonic()
    count, _bytes = job(server, duration)
    elapsed = time.monotonic() - began
    cpu = (server.cpu_seconds() - cpu_before) / elapsed
    served_after = server.per_worker(service, transport)
    deltas = [served_after[w] - served_before.get(w, 0) for w in sorted(served_after)]
    total = sum(deltas) or 1
    return Run(count / duration, cpu, [d / total for d in deltas])


def restart_time(server: Server) -> float:
    """Seconds from kill -9 of worker 1 to its successor serving (from the log)."""
    text = server.log.read_text(errors="replace")
    pid = int([p for w, p in _SERVING.findall(text) if w == "1"][-1])
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    while True:
        found = [int(p) for w, p in _SERVING.findall(server.log.read_text()) if w == "1"]
        if found and found[-1] != pid:
            return time.monotonic() - killed
        if time.monotonic() - killed > 60:
            raise RuntimeError("worker 1 did not come back")
        time.sleep(0.01)


def main() -> int:
    """Run the table; print it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per row")
    parser.add_argument("--curve", action="store_true", help="also 4, 8, ... workers")
    parser.add_argument("--workers", type=int, default=2, help="the N compared with 1")
    parser.add_argument("--only", default="", help="run the rows whose name contains this")
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0))
    counts = [1, args.workers]
    if args.curve:
        n = args.workers * 2
        while n <= cpus:
            counts.append(n)
            n *= 2
    directory = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-workers-{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    servers = {n: start(n, directory) for n in counts}
    print(f"{cpus} CPUs usable; load average {os.getloadavg()[0]:.1f} at start")
    print(
        f"{'row':38} {'N':>2} {'rate/s':>9} {'cpu':>5} {'req/cpu-s':>9} "
        f"{'rate x1':>7} {'/cpu x1':>7}  shares"
    )
    try:
        for row in [r for r in ROWS if args.only in r[0]]:
            runs: dict[int, list[Run]] = {n: [] for n in counts}
            ratios: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
            for _ in range(args.rounds):
                this_round = {}
                for n in counts:
                    this_round[n] = run_one(servers[n], row, args.duration)
                    runs[n].append(this_round[n])
                one = this_round[1]
                for n in counts:
                    got = this_round[n]
                    ratios[n].append(
                        (
                            got.rate / one.rate if one.rate else 0.0,
                            got.per_cpu / one.per_cpu if one.per_cpu else 0.0,
                        )
                    )
            for n in counts:
                rate = median(r.rate for r in runs[n])
                cpu = median(r.cpu for r in runs[n])
                per_cpu = median(r.per_cpu for r in runs[n])
                rate_ratio = median(a for a, _ in ratios[n])
                cpu_ratio = median(b for _, b in ratios[n])
                shares = [median(r.shares[i] for r in runs[n]) for i in range(n)]
                shown = " ".join(f"{s:.0%}" for s in shares)
                print(
                    f"{row[0]:38} {n:>2} {rate:>9.0f} {cpu:>5.2f} {per_cpu:>9.0f} "
                    f"{rate_ratio:>7.2f} {cpu_ratio:>7.2f}  {shown}"
                )
        for n in counts:
            if n > 1:
                # Once: a second death within 10 s would double the restart delay.
                took = restart_time(servers[n])
                print(f"--workers={n}: kill -9 of a worker to its successor serving: {took:.2f} s")
    finally:
        for server in servers.values():
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
