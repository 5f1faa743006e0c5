"""
Benchmark netproto.ping against its peers, side by side, on loopback only.

Two measurements, interleaved round by round (A B C A B C ...) because the
machine is shared and noisy:

- per-probe overhead: N echo requests to 127.0.0.1 back to back (interval 0),
  wall time and CPU time per probe: netproto's ``Ping`` (in process, first send to
  summary; ``iterate=False`` as the ping command runs it, and the iterating
  path) against iputils ``ping -q -i 0 -c N`` (its own reported time, so
  process start-up is not counted against it), ``icmplib.ping`` and a bare
  Python ``sendto``/``recv`` loop that checks nothing;
- a sweep of 127.0.0.0/20 (4,094 hosts, all answering on loopback), in hosts
  per second with lost replies counted: netproto's ``Sweep`` at ``rate=0``
  (target expansion included) against ``fping -i 0 -r 0 -g`` (its reported
  elapsed time) and ``icmplib.multiping``, and a bare Python loop of
  ``sendto``/``recv`` with no parsing at all: the ceiling for any Python
  pinger on this machine at that moment.

Needs root (raw sockets; ``ping -i 0``). Peers that are missing are skipped
with a message. Run: ``.venv/bin/python benchmarks/bench_ping.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

SWEEP = "127.0.0.0/20"
TARGETS = [str(a) for a in ipaddress.ip_network(SWEEP).hosts()]


class Series:
    """Repeated measurements of one contender: a rate (higher is better) and losses."""

    def __init__(self, name: str, unit: str, units: int = 1) -> None:
        self.name = name
        self.unit = unit
        self.units = units
        """Probes (or hosts) one measurement covers: what its CPU time is divided by."""
        self.values: list[float] = []
        self.lost: list[int] = []
        self.cpu: list[float] = []
        """CPU microseconds per probe (or host) of each measurement."""

    def add(self, value: float, lost: int, cpu: float = 0.0) -> None:
        self.values.append(value)
        self.lost.append(lost)
        self.cpu.append(cpu * 1e6 / self.units)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def cpu_seconds() -> float:
    """CPU time so far of this process and of its children waited for (user and system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


# -- per-probe overhead ------------------------------------------------------


async def ours_probe(
    reactor: Any, client: Any, count: int, *, iterate: bool = True
) -> tuple[float, int]:
    """
    ``Ping`` at interval 0; with *iterate* False (as the ping command runs
    it), the back-to-back path: the next probe as soon as the reply is matched.
    """
    started = time.perf_counter()
    running = client.ping("127.0.0.1", count=count, interval=0.0, timeout=1.0, iterate=iterate)
    summary = await running.done
    elapsed = time.perf_counter() - started
    return elapsed / count * 1e6, summary.transmitted - summary.received


def floor_probe(count: int) -> tuple[float, int]:
    """
    The ceiling for any Python pinger of one host here and now: ``sendto`` a
    prebuilt request, ``recv`` until a reply comes, again, with no checks at
    all (not a usable pinger), on a raw socket that sees only echo replies.
    """
    import socket
    import struct

    from netproto.ping import echo_request

    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        sock.setsockopt(255, 1, struct.pack("=I", 0xFFFFFFFF ^ 1))  # ICMP_FILTER: replies
        sock.setblocking(False)
        ident = os.getpid() & 0xFFFF
        requests = [echo_request(4, ident, i & 0xFFFF, bytes(56)) for i in range(count)]
        address = ("127.0.0.1", 0)
        lost = 0
        started = time.perf_counter()
        for data in requests:
            sock.sendto(data, address)
            for _ in range(100_000):  # bounded: a lost reply is counted, not waited for
                try:
                    sock.recv(2048)
                    break
                except BlockingIOError:
                    continue
            else:
                lost += 1
        elapsed = time.perf_counter() - started
    finally:
        sock.close()
    return elapsed / count * 1e6, lost


def iputils_probe(count: int) -> tuple[float, int]:
    result = _run(["ping", "-q", "-i", "0", "-c", str(count), "127.0.0.1"])
    match = re.search(r"(\d+) packets transmitted, (\d+) received.*time (\d+)ms", result.stdout)
    if match is None:
        raise RuntimeError(f"unexpected ping output: {result.stdout!r} {result.stderr!r}")
    sent, received, ms = (int(g) for g in match.groups())
    return ms * 1000.0 / sent, sent - received


def icmplib_probe(icmplib: Any, count: int) -> tuple[float, int]:
    started = time.perf_counter()
    host = icmplib.ping("127.0.0.1", count=count, interval=0, timeout=1, privileged=True)
    elapsed = time.perf_counter() - started
    return elapsed / count * 1e6, host.packets_sent - host.packets_received


# -- sweeps ------------------------------------------------------------------


async def ours_sweep(client: Any) -> tuple[float, int]:
    from netproto.ping import expand_targets

    started = time.perf_counter()
    summary = await client.sweep(expand_targets([SWEEP]), rate=0, timeout=1.0).done
    elapsed = time.perf_counter() - started
    lost = len(TARGETS) - summary.alive + summary.duplicates + summary.damaged
    return len(TARGETS) / elapsed, lost


def floor_sweep() -> tuple[float, int]:
    """
    The ceiling for any Python sweep on this machine right now: a bare loop of
    ``sendto`` over prebuilt requests, then ``recv`` until empty, with no
    parsing or matching at all (not a usable pinger: it checks nothing).
    """
    import socket
    import struct

    from netproto.ping import echo_request

    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
        sock.setsockopt(255, 1, struct.pack("=I", 0xFFFFFFFF ^ 1))  # ICMP_FILTER: replies
        sock.setblocking(False)
        ident = os.getpid() & 0xFFFF
        requests = [(echo_request(4, ident, i, bytes(56)), (t, 0)) for i, t in enumerate(TARGETS)]
        started = time.perf_counter()
        for data, address in requests:
            sock.sendto(data, address)
        received = 0
        while True:
            try:
                sock.recv(2048)
            except BlockingIOError:
                break
            received += 1
        elapsed = time.perf_counter() - started
    finally:
        sock.close()
    return len(TARGETS) / elapsed, max(0, len(TARGETS) - received)


def fping_sweep() -> tuple[float, int]:
    result = _run(["fping", "-q", "-s", "-i", "0", "-r", "0", "-t", "1000", "-g", SWEEP])
    elapsed = re.search(r"([\d.]+) sec \(elapsed real time\)", result.stderr)
    alive = re.search(r"(\d+) alive", result.stderr)
    if elapsed is None or alive is None:
        raise RuntimeError(f"unexpected fping output: {result.stderr!r}")
    return len(TARGETS) / float(elapsed.group(1)), len(TARGETS) - int(alive.group(1))


def icmplib_sweep(icmplib: Any) -> tuple[float, int]:
    started = time.perf_counter()
    hosts = icmplib.multiping(TARGETS, count=1, interval=0, timeout=1, privileged=True)
    elapsed = time.perf_counter() - started
    return len(TARGETS) / elapsed, sum(1 for h in hosts if not h.is_alive)


# -- the run -----------------------------------------------------------------


def _table(title: str, rows: list[Series], reference: Series, better_low: bool) -> None:
    print(f"\n{title}")
    print(
        f"| {'contender':<28} | {'median':>12} | {'best':>12} | {'CPU each':>9} | {'lost':>5} | "
        f"{'netproto vs it':>15} |"
    )
    print(f"|{'-' * 30}|{'-' * 14}|{'-' * 14}|{'-' * 11}|{'-' * 7}|{'-' * 17}|")
    for series in rows:
        best = min(series.values) if better_low else max(series.values)
        if series is reference:
            ratio = "-"
        elif better_low:
            ratio = f"{reference.median / series.median:.2f}x the time"
        else:
            ratio = f"{reference.median / series.median:.2f}x the rate"
        print(
            f"| {series.name:<28} | {series.median:>9,.1f} {series.unit:<2} | "
            f"{best:>9,.1f} {series.unit:<2} | {statistics.median(series.cpu):>6.2f} us | "
            f"{sum(series.lost):>5} | {ratio:>15} |"
        )


async def main(reactor: Any, rounds: int, probes: int) -> int:
    from netproto.ping import PingClient

    try:
        import icmplib
    except ImportError:
        icmplib = None
        print("icmplib is not installed: skipping it (pip install icmplib)")
    have_ping = shutil.which("ping") is not None
    have_fping = shutil.which("fping") is not None
    for tool, present in (("ping (iputils)", have_ping), ("fping", have_fping)):
        if not present:
            print(f"{tool} is not installed: skipping it")

    client = PingClient(reactor, "raw")
    hosts = len(TARGETS)
    probe_ours = Series("netproto Ping, back to back", "us", probes)
    probe_iterating = Series("netproto Ping, iterate=True", "us", probes)
    probe_floor = Series("bare sendto/recv loop", "us", probes)
    probe_iputils = Series("iputils ping -i 0", "us", probes)
    probe_icmplib = Series("icmplib.ping, interval 0", "us", max(1, probes // 5))
    sweep_ours = Series("netproto Sweep, rate 0", "/s", hosts)
    sweep_fping = Series("fping -i 0 -r 0 -g", "/s", hosts)
    sweep_icmplib = Series("icmplib.multiping", "/s", hosts)
    sweep_floor = Series("bare sendto/recv loop", "/s", hosts)

    steps: list[tuple[Series, Callable[[], Any]]] = [
        (sweep_ours, lambda: ours_sweep(client)),
        (probe_ours, lambda: ours_probe(reactor, client, probes, iterate=False)),
        (probe_iterating, lambda: ours_probe(reactor, client, probes)),
        (probe_floor, lambda: floor_probe(probes)),
        (sweep_floor, floor_sweep),
    ]
    if have_fping:
        steps.append((sweep_fping, fping_sweep))
    if have_ping:
        steps.append((probe_iputils, lambda: iputils_probe(probes)))
    if icmplib is not None:
        steps.append((sweep_icmplib, lambda: icmplib_sweep(icmplib)))
        steps.append((probe_icmplib, lambda: icmplib_probe(icmplib, max(1, probes // 5))))
    # One warm-up pass, not recorded.
    for _, step in steps:
        outcome = step()
        if hasattr(outcome, "send"):
            await outcome
    for _ in range(rounds):
        for series, step in steps:
            # CPU of the step: ours in this process, a tool's in its child
            # (start-up included, small for iputils and fping).
            before = cpu_seconds()
            outcome = step()
            if hasattr(outcome, "send"):
                outcome = await outcome
            series.add(*outcome, cpu=cpu_seconds() - before)
    client.close()

    print(
        f"\n{rounds} interleaved rounds, {probes} probes per per-probe run, "
        f"{len(TARGETS)} hosts per sweep, {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}"
    )
    _table(
        "Per-probe wall time (lower is better)",
        [
            s
            for s in (probe_ours, probe_iterating, probe_iputils, probe_icmplib, probe_floor)
            if s.values
        ],
        probe_ours,
        better_low=True,
    )
    _table(
        f"Sweep of {SWEEP} (higher is better)",
        [s for s in (sweep_ours, sweep_fping, sweep_icmplib, sweep_floor) if s.values],
        sweep_ours,
        better_low=False,
    )
    print("\nTargets:")
    if probe_iputils.values:
        ratio = probe_ours.median / probe_iputils.median
        print(
            f"  per-probe overhead {ratio:.2f}x iputils, back to back (issue 13: <= 1.5x): "
            f"{'met' if ratio <= 1.5 else 'NOT met'}"
        )
        ratio = probe_floor.median / probe_iputils.median
        print(f"  (the bare sendto/recv loop is {ratio:.2f}x iputils here and now)")
    lost = sum(sweep_ours.lost)
    print(
        f"  sweep {sweep_ours.median:,.0f} hosts/s median, {max(sweep_ours.values):,.0f} best, "
        f"{lost} lost (target >= 100,000 with 0 lost): "
        f"{'met' if sweep_ours.median >= 100_000 and not lost else 'NOT met'}"
    )
    print(
        f"  (the bare sendto/recv loop, the ceiling for Python here and now: "
        f"{sweep_floor.median:,.0f} hosts/s; netproto reaches "
        f"{sweep_ours.median / sweep_floor.median:.0%} of it)"
    )
    if sweep_icmplib.values:
        ratio = sweep_ours.median / sweep_icmplib.median
        print(
            f"  {ratio:.1f}x icmplib.multiping (target >= 6x): {'met' if ratio >= 6 else 'NOT met'}"
        )
    if sweep_fping.values:
        ratio = sweep_ours.median / sweep_fping.median
        print(
            f"  Sweep at {ratio:.2f}x fping's rate, in process (issue 13, for the command: "
            f">= 1x; see bench_sweep.py): {'met' if ratio >= 1 else 'NOT met'}"
        )
    return 0


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument(
        "--probes", type=int, default=5000, help="probes per per-probe run (default 5000)"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_ping.py needs root: raw ICMP sockets and ping -i 0")
    from twisted.internet import task

    task.react(
        lambda reactor: __import__("twisted.internet.defer", fromlist=["x"]).ensureDeferred(
            main(reactor, args.rounds, args.probes)
        )
    )


if __name__ == "__main__":
    run()
