"""
Benchmark the stateless sweep against fping and iputils, side by side in one
run, interleaved round by round (A B A B ...) because the machine is shared:

- sweeps of 127.0.0.0/20 and 127.0.0.0/16 (every target answers on loopback):
  ``netproto ping -q --rate 0`` (and with ``--processes 2``) against
  ``fping -q -s -i 0 -r 0 -t 1000 -g``, in targets per second from each
  command's own reported time (process start-up not counted) and from the
  wall clock, with each process's peak RSS (``wait4``) and CPU time;
- per-probe overhead: ``netproto ping -q -i 0 -c N 127.0.0.1`` against
  iputils ``ping -q -i 0 -c N 127.0.0.1``, each from its reported time;
- with ``--big``, once: the peak RSS of a /16 and a /12 sweep (1,048,574
  targets), and the growth between them against N/8 bytes.

Needs root (raw sockets, ``ping -i 0``). Loopback only. Run:
``.venv/bin/python benchmarks/bench_sweep.py [--rounds N] [--big]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

NETPROTO = [sys.executable, "-m", "netproto", "ping"]


def measure(command: list[str]) -> tuple[str, float, int, float]:
    """Run *command*: (its stdout and stderr, wall seconds, peak RSS in KiB, CPU seconds)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    assert process.stdout is not None
    out = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return out, wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def ours_sweep(net: str, *extra: str) -> tuple[float, float, int, float, int]:
    """(targets/s by its own time, by the wall clock, peak RSS KiB, CPU s, not alive)."""
    out, wall, rss, cpu = measure([*NETPROTO, "-q", "--rate", "0", *extra, net])
    match = re.search(r"(\d+) targets: (\d+) alive.* time (\d+)ms", out)
    if match is None:
        raise RuntimeError(f"unexpected netproto output: {out!r}")
    targets, alive, ms = (int(g) for g in match.groups())
    return targets / (ms / 1000.0), targets / wall, rss, cpu, targets - alive


def fping_sweep(net: str) -> tuple[float, float, int, float, int]:
    """The same for ``fping -i 0 -r 0 -g``."""
    command = ["fping", "-q", "-s", "-i", "0", "-r", "0", "-t", "1000", "-g", net]
    out, wall, rss, cpu = measure(command)
    elapsed = re.search(r"([\d.]+) sec \(elapsed real time\)", out)
    targets = re.search(r"(\d+) targets", out)
    alive = re.search(r"(\d+) alive", out)
    if elapsed is None or targets is None or alive is None:
        raise RuntimeError(f"unexpected fping output: {out!r}")
    n = int(targets.group(1))
    return n / float(elapsed.group(1)), n / wall, rss, cpu, n - int(alive.group(1))


def per_probe(command: list[str], count: int) -> float:
    """Microseconds per probe of a ``-q -i 0 -c COUNT`` ping, from its reported time."""
    out, _, _, _ = measure([*command, "-q", "-i", "0", "-c", str(count), "127.0.0.1"])
    match = re.search(r"(\d+) packets transmitted, (\d+) received.*time (\d+)ms", out)
    if match is None:
        raise RuntimeError(f"unexpected ping output: {out!r}")
    return int(match.group(3)) * 1000.0 / int(match.group(1))


def _row(name: str, values: list[tuple[float, ...]]) -> tuple[str, float]:
    own = statistics.median(v[0] for v in values)
    wall = statistics.median(v[1] for v in values)
    rss = max(v[2] for v in values)
    cpu = statistics.median(v[3] for v in values)
    lost = sum(int(v[4]) for v in values)
    line = (
        f"| {name:<34} | {own:>11,.0f} /s | {wall:>11,.0f} /s | {rss / 1024:>7.1f} MiB "
        f"| {cpu:>6.2f} s | {lost:>5} |"
    )
    return line, own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--probes", type=int, default=5000, help="probes per per-probe run")
    parser.add_argument("--big", action="store_true", help="also the /16 vs /12 memory run")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_sweep.py needs root: raw ICMP sockets and ping -i 0")
    have_fping = shutil.which("fping") is not None
    have_ping = shutil.which("ping") is not None
    contenders: dict[str, list[tuple[float, ...]]] = {}
    steps = []
    for net in ("127.0.0.0/20", "127.0.0.0/16"):
        steps.append((f"netproto {net}", lambda net=net: ours_sweep(net)))
        steps.append(
            (f"netproto --processes 2 {net}", lambda net=net: ours_sweep(net, "--processes", "2"))
        )
        if have_fping:
            steps.append((f"fping -i 0 -r 0 -g {net}", lambda net=net: fping_sweep(net)))
    probes: dict[str, list[float]] = {"netproto ping -i 0": []}
    if have_ping:
        probes["iputils ping -i 0"] = []
    for _ in range(args.rounds):
        for name, step in steps:
            contenders.setdefault(name, []).append(step())
        probes["netproto ping -i 0"].append(per_probe(NETPROTO, args.probes))
        if have_ping:
            probes["iputils ping -i 0"].append(per_probe(["ping"], args.probes))
    print(
        f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}\n"
    )
    print(
        f"| {'sweep (medians; RSS: peak)':<34} | {'own time':>14} | {'wall clock':>14} "
        f"| {'peak RSS':>11} | {'CPU':>8} | {'lost':>5} |"
    )
    print(f"|{'-' * 36}|{'-' * 16}|{'-' * 16}|{'-' * 13}|{'-' * 10}|{'-' * 7}|")
    own: dict[str, float] = {}
    for name, values in contenders.items():
        line, own[name] = _row(name, values)
        print(line)
    print()
    for net in ("127.0.0.0/20", "127.0.0.0/16"):
        fping = own.get(f"fping -i 0 -r 0 -g {net}")
        if fping:
            for ours in (f"netproto {net}", f"netproto --processes 2 {net}"):
                print(f"  {ours}: {own[ours] / fping:.2f}x fping's rate (own times)")
    ours_probe = statistics.median(probes["netproto ping -i 0"])
    print(f"\n  per probe: netproto {ours_probe:.1f} us", end="")
    if have_ping:
        theirs = statistics.median(probes["iputils ping -i 0"])
        print(f", iputils {theirs:.1f} us: {ours_probe / theirs:.2f}x iputils")
    else:
        print()
    if args.big:
        small = ours_sweep("127.0.0.0/16")
        big = ours_sweep("127.0.0.0/12")
        growth = (big[2] - small[2]) * 1024
        allowed = (1048574 - 65534) // 8
        print(
            f"\n  peak RSS: /16 {small[2] / 1024:.1f} MiB, /12 {big[2] / 1024:.1f} MiB "
            f"(growth {growth / 1024:.0f} KiB; N/8 for the /12 is {allowed / 1024:.0f} KiB); "
            f"/12 at {big[0]:,.0f} targets/s, {big[4]} not alive"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
