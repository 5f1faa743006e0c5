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
usable: the scaling curve. ``--baseline DIR`` also runs N workers from the
netproto tree in DIR (another checkout, e.g. ``git worktree add /tmp/base
main``; it is put first on ``PYTHONPATH``), in the same rounds: a change
measured against the code before it.

    .venv/bin/python benchmarks/bench_workers.py [--duration 2] [--rounds 3] [--curve]
        [--baseline DIR] [--udp-sources 16] [--generators 1]

``--generators K`` runs K load generator processes at once, for a machine
where one generator cannot keep the workers busy.

``--pin`` puts every server process (twistd, and the workers it starts) on
CPU 0 and the load generators on CPU 1, as ``bench_services.py`` pins: the
workers then share one core, and the row says what running N workers costs
against one process on the same CPU (the split batches, the extra wake-ups,
the supervisor), without the scheduler's contention between the workers and
the generator for two cores, which the unpinned rows include.

``--loadgen c`` (the default when it builds) drives the load with the C
generator of ``benchmarks/_loadgen.c`` (``loadgen.py``): the same loads, at a
fraction of the Python generator's CPU per request, so the cores it shares
with the workers are less taken. Its timed window follows a 0.3 s warm-up;
the server's CPU, context switches and the machine's idle time are sampled
at the window's start and end (with K generators: once all K have started,
and when the first ends). ``--loadgen python`` is the generator of
``bench_services.py``, sampled around the whole run as before.

Beside rates and shares, each row gives what the 2-worker result needs to be
read: ``vcs/req``, the voluntary context switches of the server processes
per request (each one a wait in epoll that slept: its inverse is about the
requests served per wake-up), ``gen us``, the load generator's own CPU per
request, and ``idle``, the machine's idle share during the run (all CPUs).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen
from bench_services import (
    free_port,
    load_daytime,
    load_tcp_pingpong,
    load_udp,
)

_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_SERVING = re.compile(r"netproto: worker (\d+) \(pid (\d+)\) serving")


@dataclass
class Server:
    """One twistd netproto with N workers."""

    workers: int
    label: str
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

    def switches(self) -> int:
        """Voluntary context switches of the supervisor and every live worker so far."""
        total = 0
        for pid in self.tree():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
        return total

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
        # With workers, the per-worker requests; one process: its own counter of them.
        if self.workers > 1:
            name = "netproto_worker_requests_total"
        elif transport == "tcp":
            name = "netproto_connections_total"
        else:
            name = "netproto_datagrams_received_total"
        found = {w: 0 for w in range(1, self.workers + 1)}
        for metric, labels, value in _SAMPLE.findall(text):
            tags = dict(_LABEL.findall(labels))
            if (metric, tags.get("service"), tags.get("transport")) == (name, service, transport):
                found[int(tags.get("worker", 1))] = int(float(value))
        return found

    def stop(self) -> None:
        """SIGTERM; wait."""
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(workers: int, directory: Path, tree: str | None = None) -> Server:
    """Start twistd netproto with *workers* workers (from the netproto tree *tree*,
    or the one installed); wait until every worker serves."""
    echo, daytime, metrics = free_port(), free_port(), free_port()
    big = "1000000000"
    label = f"{workers}" if tree is None else f"{workers} base"
    log = directory / f"twistd-{label.replace(' ', '-')}.log"
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
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
        env=env,
        preexec_fn=_pin_server if PIN is not None else None,
    )
    server = Server(workers, label, process, echo, daytime, metrics, log)
    deadline = time.monotonic() + 60
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        ready = len(set(_SERVING.findall(text))) >= workers if workers > 1 else "echo on" in text
        if ready:
            return server
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"--workers={workers} did not start:\n{text}")
        time.sleep(0.1)


UDP_SOURCES = 16
"""The load generator's UDP sockets, each on its own address (``--udp-sources``)."""
GENERATORS = 1
"""Load generator processes running at once (``--generators``)."""
PIN: tuple[int, int] | None = None
"""(server CPU, load generator CPU) with ``--pin``, else None: nothing pinned."""


def _pin_server() -> None:
    """In the server's process before it runs (its workers inherit it): the server CPU."""
    if PIN is not None:
        os.sched_setaffinity(0, {PIN[0]})


ROWS: list[tuple[str, str, str, Callable[[Server, float], tuple[int, int]]]] = [
    (
        "TCP echo 1 KiB ping-pong, 100 conns",
        "echo",
        "tcp",
        # 100 in all, however many generators share them.
        lambda s, d: load_tcp_pingpong(s.echo, d, 100 // GENERATORS, 1024),
    ),
    ("TCP daytime, 16 at a time", "daytime", "tcp", lambda s, d: load_daytime(s.daytime, d)),
    (
        "UDP echo 64 B",
        "echo",
        "udp",
        lambda s, d: load_udp(s.echo, d, 64, sockets=UDP_SOURCES),
    ),
]


C_LOADS: dict[str, Callable[[Server], tuple[str, int, dict[str, Any]]]] = {
    # The same loads as ROWS' Python ones.
    "TCP echo 1 KiB ping-pong, 100 conns": lambda s: (
        "echo",
        s.echo,
        {"conns": 100 // GENERATORS, "size": 1024},
    ),
    "TCP daytime, 16 at a time": lambda s: (
        "daytime",
        s.daytime,
        {"parallel": 16, "sources": 60000},
    ),
    "UDP echo 64 B": lambda s: (
        "udp",
        s.echo,
        {"size": 64, "sockets": UDP_SOURCES, "window": 8, "sources": UDP_SOURCES},
    ),
}
"""The C generator's load for each row."""

WARMUP = 0.3
"""Seconds the C generator runs before its timed window."""


def _cpu_times() -> tuple[float, float]:
    """(idle, total) clock ticks of all CPUs so far, from /proc/stat (idle counts iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return fields[3] + fields[4], sum(fields)


@dataclass
class Sample:
    """What is read at each end of a timed window."""

    when: float
    cpu: float
    switches: int
    idle: float
    ticks: float

    @classmethod
    def take(cls, server: Server) -> Sample:
        idle, ticks = _cpu_times()
        return cls(time.monotonic(), server.cpu_seconds(), server.switches(), idle, ticks)


@dataclass
class Run:
    rate: float
    cpu: float
    shares: list[float]
    switches: float = 0.0
    """The server's voluntary context switches per second."""
    load_cpu: float = 0.0
    """The load generators' CPU, in cores."""
    idle: float = 0.0
    """The machine's idle share (all CPUs) during the window."""

    @property
    def per_cpu(self) -> float:
        return self.rate / self.cpu if self.cpu else 0.0

    @property
    def switches_per_request(self) -> float:
        return self.switches / self.rate if self.rate else 0.0

    @property
    def load_per_request(self) -> float:
        """The generators' CPU seconds per request."""
        return self.load_cpu / self.rate if self.rate else 0.0


def _window(first: Sample, last: Sample) -> tuple[float, float, float, float]:
    """(seconds, server cores, switches per second, idle share) between two samples."""
    elapsed = last.when - first.when
    ticks = last.ticks - first.ticks
    return (
        elapsed,
        (last.cpu - first.cpu) / elapsed,
        (last.switches - first.switches) / elapsed,
        (last.idle - first.idle) / ticks if ticks else 0.0,
    )


def run_one_c(
    server: Server, row: tuple[str, str, str, Any], duration: float, generators: int
) -> Run:
    """One measurement of *row* against *server* from *generators* C generators at once."""
    name, service, transport, _job = row
    mode, port, options = C_LOADS[name](server)
    lock = threading.Lock()
    seen = {"start": 0, "end": 0}
    samples: dict[str, Sample] = {}

    def mark(what: str) -> None:
        with lock:
            seen[what] += 1
            # The window every generator is in: from the last start to the first end.
            if (what == "start" and seen[what] == generators) or (
                what == "end" and seen[what] == 1
            ):
                samples[what] = Sample.take(server)

    served_before = server.per_worker(service, transport)
    binary = loadgen.build()
    results: list[loadgen.Result | None] = [None] * generators

    def one(index: int) -> None:
        try:
            results[index] = loadgen.run(
                mode,
                port,
                duration=duration,
                warmup=WARMUP,
                on_mark=mark,
                binary=binary,
                cpu=PIN[1] if PIN is not None else None,
                **options,
            )
        except loadgen.LoadgenError as e:
            # A generator that fails counts 0 instead of ending the run.
            print(f"load generator {index} failed: {e}", file=sys.stderr)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(generators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    served_after = server.per_worker(service, transport)
    done = [r for r in results if r is not None]
    rate = sum(r.rate for r in done)
    load_cpu = sum(r.cpu / r.seconds for r in done if r.seconds)
    if "start" in samples and "end" in samples:
        _elapsed, cpu, switches, idle = _window(samples["start"], samples["end"])
    else:
        cpu = switches = idle = 0.0
    deltas = [served_after[w] - served_before.get(w, 0) for w in sorted(served_after)]
    total = sum(deltas) or 1
    return Run(rate, cpu, [d / total for d in deltas], switches, load_cpu, idle)


def _generator(conn: Any, job: Any, server: Server, duration: float) -> None:
    if PIN is not None:
        os.sched_setaffinity(0, {PIN[1]})
    conn.send(job(server, duration)[0])


def run_one(
    server: Server, row: tuple[str, str, str, Any], duration: float, generators: int = 1
) -> Run:
    """One measurement of *row* against *server*, from *generators* load processes."""
    _name, service, transport, job = row
    served_before = server.per_worker(service, transport)
    first = Sample.take(server)
    mine = os.times()
    if generators == 1:
        count, _bytes = job(server, duration)
    else:
        ctx = multiprocessing.get_context("fork")
        pipes = [ctx.Pipe() for _ in range(generators)]
        children = [
            ctx.Process(target=_generator, args=(child, job, server, duration))
            for _, child in pipes
        ]
        for child in children:
            child.start()
        # A generator that failed sends nothing: count it as 0 rather than wait forever.
        count = sum(parent.recv() if parent.poll(duration + 30) else 0 for parent, _ in pipes)
        for child in children:
            child.join()
    elapsed, cpu, switches, idle = _window(first, Sample.take(server))
    after = os.times()
    # The generator ran in this process (one) or in its children (several).
    load = (
        after.user + after.system - mine.user - mine.system
        if generators == 1
        else after.children_user + after.children_system - mine.children_user - mine.children_system
    )
    served_after = server.per_worker(service, transport)
    deltas = [served_after[w] - served_before.get(w, 0) for w in sorted(served_after)]
    total = sum(deltas) or 1
    return Run(count / duration, cpu, [d / total for d in deltas], switches, load / elapsed, idle)


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
    global UDP_SOURCES, GENERATORS, PIN
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per row")
    parser.add_argument("--curve", action="store_true", help="also 4, 8, ... workers")
    parser.add_argument("--workers", type=int, default=2, help="the N compared with 1")
    parser.add_argument("--only", default="", help="run the rows whose name contains this")
    parser.add_argument("--baseline", default=None, help="also N workers from this netproto tree")
    parser.add_argument("--udp-sources", type=int, default=UDP_SOURCES, help="UDP client sockets")
    parser.add_argument(
        "--generators", type=int, default=1, help="load generator processes (2: saturate)"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="servers (every worker) on CPU 0, load generators on CPU 1",
    )
    loadgen.add_option(parser)
    args = parser.parse_args()
    generator = loadgen.choose(args.loadgen)
    UDP_SOURCES = args.udp_sources
    GENERATORS = args.generators
    cpus = len(os.sched_getaffinity(0))
    if args.pin:
        if not {0, 1} <= os.sched_getaffinity(0):
            parser.error("--pin needs CPUs 0 and 1")
        PIN = (0, 1)
    configs: list[tuple[int, str | None]] = [(1, None), (args.workers, None)]
    if args.baseline:
        configs.append((args.workers, str(Path(args.baseline).resolve())))
    if args.curve:
        n = args.workers * 2
        while n <= cpus:
            configs.append((n, None))
            n *= 2
    directory = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-workers-{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    servers = [start(n, directory, tree) for n, tree in configs]
    print(
        f"{cpus} CPUs usable; load average {os.getloadavg()[0]:.1f} at start; "
        f"{args.generators} {'C' if generator == 'c' else 'Python'} load generator process(es)"
        + ("; servers pinned to CPU 0, generators to CPU 1" if PIN else "; nothing pinned")
    )
    print(
        f"{'row':38} {'N':>6} {'rate/s':>9} {'cpu':>5} {'req/cpu-s':>9} "
        f"{'rate x1':>7} {'/cpu x1':>7} {'min':>4} {'vcs/req':>7} {'gen us':>6} {'idle':>5}"
        "  shares"
    )
    measure = run_one_c if generator == "c" else run_one
    try:
        for row in [r for r in ROWS if args.only in r[0]]:
            runs: list[list[Run]] = [[] for _ in servers]
            ratios: list[list[tuple[float, float]]] = [[] for _ in servers]
            for _ in range(args.rounds):
                this_round = [
                    measure(server, row, args.duration, args.generators) for server in servers
                ]
                one = this_round[0]
                for index, got in enumerate(this_round):
                    runs[index].append(got)
                    ratios[index].append(
                        (
                            got.rate / one.rate if one.rate else 0.0,
                            got.per_cpu / one.per_cpu if one.per_cpu else 0.0,
                        )
                    )
            for index, server in enumerate(servers):
                done = runs[index]
                rate = median(r.rate for r in done)
                cpu = median(r.cpu for r in done)
                per_cpu = median(r.per_cpu for r in done)
                rate_ratio = median(a for a, _ in ratios[index])
                cpu_ratio = median(b for _, b in ratios[index])
                n = server.workers
                shares = [median(r.shares[i] for r in done) for i in range(n)]
                # The smallest share any worker had in any round (the target: >= 1/4).
                least = min(min(r.shares) for r in done)
                shown = " ".join(f"{s:.0%}" for s in shares)
                switches = median(r.switches_per_request for r in done)
                load = median(r.load_per_request for r in done) * 1e6
                idle = median(r.idle for r in done)
                print(
                    f"{row[0]:38} {server.label:>6} {rate:>9.0f} {cpu:>5.2f} {per_cpu:>9.0f} "
                    f"{rate_ratio:>7.2f} {cpu_ratio:>7.2f} {least:>4.0%} {switches:>7.3f} "
                    f"{load:>6.1f} {idle:>5.0%}  {shown}  (load avg {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
        for server in servers:
            if server.workers > 1:
                # Once: a second death within 10 s would double the restart delay.
                took = restart_time(server)
                print(
                    f"--workers={server.label}: kill -9 of a worker to its successor serving: "
                    f"{took:.2f} s"
                )
    finally:
        for server in servers:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
