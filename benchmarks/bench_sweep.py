"""
Benchmark the stateless sweep against fping and iputils, side by side in one
run, interleaved round by round (A B A B ...) because the machine is shared:

- sweeps of 127.0.0.0/20 and 127.0.0.0/16 (every target answers on loopback):
  ``netproto fping -q -s -i 0 -r 0 -t 1000 -g`` (and with ``--processes 2``)
  against ``fping`` with the same flags, in targets per second from each
  command's own reported time (process start-up not counted; for
  ``--processes``, from the first shard's first probe to the last one's end)
  and from the wall clock, with each process's peak RSS and CPU time
  (``wait4``: children included) and CPU per target (netproto's start-up
  CPU, measured in the same rounds, taken off);
- per-probe overhead: ``netproto ping -q -i 0 -c N 127.0.0.1`` against
  iputils ``ping -q -i 0 -c N 127.0.0.1``, each from its reported time, and
  CPU per probe of each process;
- the start-up of ``netproto ping -c 1`` (wall and CPU), and the targets of
  issue 13 met or not: the /20 at fping's rate or better by own times (the
  wall-clock ratio, start-up included, beside it), the /16 at 1.5x (one
  process or ``--processes 2``, the better), the per-probe overhead within
  1.5x of iputils;
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
NETPROTO_FPING = [sys.executable, "-m", "netproto", "fping"]


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


def _fping_figures(out: str, wall: float, rss: int, cpu: float) -> tuple[float, ...]:
    """(targets/s by its own time, by the wall clock, peak RSS KiB, CPU s, not alive, targets)."""
    elapsed = re.search(r"([\d.]+) sec \(elapsed real time\)", out)
    targets = re.search(r"(\d+) targets", out)
    alive = re.search(r"(\d+) alive", out)
    if elapsed is None or targets is None or alive is None:
        raise RuntimeError(f"unexpected output: {out!r}")
    n = int(targets.group(1))
    return n / float(elapsed.group(1)), n / wall, rss, cpu, n - int(alive.group(1)), n


def ours_sweep(net: str, *extra: str) -> tuple[float, ...]:
    """
    The same for ``netproto fping`` with fping's flags (-q -s: nothing per
    target, the statistics block with the elapsed time at the end).
    """
    command = [*NETPROTO_FPING, "-q", "-s", "-i", "0", "-r", "0", "-t", "1000", *extra, "-g", net]
    return _fping_figures(*measure(command))


def fping_sweep(net: str) -> tuple[float, ...]:
    """The same for ``fping -i 0 -r 0 -g``."""
    return _fping_figures(
        *measure(["fping", "-q", "-s", "-i", "0", "-r", "0", "-t", "1000", "-g", net])
    )


def per_probe(command: list[str], count: int) -> tuple[float, float]:
    """
    Microseconds per probe of a ``-q -i 0 -c COUNT`` ping: from its reported
    time, and the process's CPU time (user and system, start-up included).
    """
    out, _, _, cpu = measure([*command, "-q", "-i", "0", "-c", str(count), "127.0.0.1"])
    match = re.search(r"(\d+) packets transmitted, (\d+) received.*time (\d+)ms", out)
    if match is None:
        raise RuntimeError(f"unexpected ping output: {out!r}")
    sent = int(match.group(1))
    return int(match.group(3)) * 1000.0 / sent, cpu * 1e6 / sent


def startup_cost() -> tuple[float, float]:
    """
    Wall and CPU seconds of ``netproto ping -c 1`` to 127.0.0.1: start-up and
    exit, nearly all of it.
    """
    _, wall, _, cpu = measure([*NETPROTO, "-q", "-c", "1", "127.0.0.1"])
    return wall, cpu


def _target(text: str, met: bool) -> None:
    print(f"  {text}: {'met' if met else 'NOT met'}")


def _row(
    name: str, values: list[tuple[float, ...]], smaller: list[tuple[float, ...]] | None
) -> tuple[str, float]:
    """
    A table row: rates, RSS, CPU, and (with the same command's figures on a
    *smaller* range) the CPU each more target cost: start-up costs cancel out.
    """
    own = statistics.median(v[0] for v in values)
    wall = statistics.median(v[1] for v in values)
    rss = max(v[2] for v in values)
    cpu = statistics.median(v[3] for v in values)
    lost = sum(int(v[4]) for v in values)
    per = ""
    if smaller is not None:
        more = values[0][5] - smaller[0][5]
        per = f"{(cpu - statistics.median(v[3] for v in smaller)) * 1e6 / more:.2f} us"
    line = (
        f"| {name:<36} | {own:>11,.0f} /s | {wall:>11,.0f} /s | {rss / 1024:>7.1f} MiB "
        f"| {cpu:>6.2f} s | {per:>10} | {lost:>5} |"
    )
    return line, own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--probes", type=int, default=20000, help="probes per per-probe run")
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
    probes: dict[str, list[tuple[float, float]]] = {"netproto ping -i 0": []}
    if have_ping:
        probes["iputils ping -i 0"] = []
    startups: list[float] = []
    startup_walls: list[float] = []
    sweep_startups: list[float] = []
    loads: list[float] = []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        wall, cpu = startup_cost()
        startups.append(cpu)
        startup_walls.append(wall)
        # The same sweep command over 2 targets: its start-up and exit.
        command = [*NETPROTO_FPING, "-q", "-s", "-i", "0", "-r", "0", "-g", "127.0.0.0/30"]
        sweep_startups.append(measure(command)[3])
        for name, step in steps:
            contenders.setdefault(name, []).append(step())
        probes["netproto ping -i 0"].append(per_probe(NETPROTO, args.probes))
        if have_ping:
            probes["iputils ping -i 0"].append(per_probe(["ping"], args.probes))
    loads.append(os.getloadavg()[0])
    startup = statistics.median(startups)
    startup_wall = statistics.median(startup_walls)
    print(
        f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs, load average "
        f"{min(loads):.1f}-{max(loads):.1f}, Python {sys.version.split()[0]}; "
        f"netproto ping -c 1 start-up {startup_wall * 1000:.0f} ms wall, "
        f"{startup * 1000:.0f} ms CPU (taken off its CPU per probe)\n"
    )
    print(
        f"| {'sweep (medians; RSS: peak)':<36} | {'own time':>14} | {'wall clock':>14} "
        f"| {'peak RSS':>11} | {'CPU':>8} | {'CPU/target':>10} | {'lost':>5} |"
    )
    print(f"|{'-' * 38}|{'-' * 16}|{'-' * 16}|{'-' * 13}|{'-' * 10}|{'-' * 12}|{'-' * 7}|")
    own: dict[str, float] = {}
    for name, values in contenders.items():
        smaller = contenders.get(name.replace("/16", "/20")) if name.endswith("/16") else None
        line, own[name] = _row(name, values, smaller)
        print(line)
    print("  (CPU/target: the CPU of the /16 less that of the /20, per target more)")
    print()
    for net in ("127.0.0.0/20", "127.0.0.0/16"):
        fping = own.get(f"fping -i 0 -r 0 -g {net}")
        if fping:
            for ours in (f"netproto {net}", f"netproto --processes 2 {net}"):
                print(f"  {ours}: {own[ours] / fping:.2f}x fping's rate (own times)")
    twenty = contenders["netproto 127.0.0.0/20"]
    n20 = twenty[0][5]
    cpu20 = statistics.median(v[3] for v in twenty)
    sweep_startup = statistics.median(sweep_startups)
    print(
        f"  netproto 127.0.0.0/20 CPU per target: {cpu20 * 1e6 / n20:.1f} us, start-up included "
        f"(the same command over 127.0.0.0/30: {sweep_startup * 1000:.0f} ms of CPU; the "
        "CPU/target column above is the cost per target without it)"
    )
    if "fping -i 0 -r 0 -g 127.0.0.0/20" in contenders:
        theirs20 = contenders["fping -i 0 -r 0 -g 127.0.0.0/20"]
        fping_cpu = statistics.median(v[3] for v in theirs20)
        print(f"  fping 127.0.0.0/20 CPU per target: {fping_cpu * 1e6 / n20:.1f} us (all of it)")
        print("\nTargets (issue 13):")
        ratio = own["netproto 127.0.0.0/20"] / own["fping -i 0 -r 0 -g 127.0.0.0/20"]
        _target(f"/20 sweep {ratio:.2f}x fping's rate, own times (>= 1x)", ratio >= 1)
        walls = statistics.median(v[1] for v in twenty) / statistics.median(v[1] for v in theirs20)
        # Not a target: the interpreter's and Twisted's imports alone take
        # several times fping's whole /20 run.
        print(f"  (/20 sweep {walls:.2f}x fping's rate by the wall clock, process start-up in)")
        fping16 = own["fping -i 0 -r 0 -g 127.0.0.0/16"]
        one16 = own["netproto 127.0.0.0/16"] / fping16
        two16 = own["netproto --processes 2 127.0.0.0/16"] / fping16
        _target(
            f"/16 sweep {max(one16, two16):.2f}x fping's rate, own times (>= 1.5x; one "
            f"process {one16:.2f}x, --processes 2 {two16:.2f}x)",
            max(one16, two16) >= 1.5,
        )
    ours_probe = statistics.median(p[0] for p in probes["netproto ping -i 0"])
    ours_cpu = statistics.median(p[1] for p in probes["netproto ping -i 0"])
    ours_cpu_net = ours_cpu - startup * 1e6 / args.probes
    print(
        f"\n  per probe: netproto {ours_probe:.1f} us (CPU {ours_cpu:.1f} us, "
        f"{ours_cpu_net:.1f} us without start-up)",
        end="",
    )
    if have_ping:
        theirs = statistics.median(p[0] for p in probes["iputils ping -i 0"])
        theirs_cpu = statistics.median(p[1] for p in probes["iputils ping -i 0"])
        print(
            f", iputils {theirs:.1f} us (CPU {theirs_cpu:.1f} us): {ours_probe / theirs:.2f}x "
            f"iputils's time, {ours_cpu_net / theirs_cpu:.2f}x its CPU"
        )
        _target(
            f"per-probe overhead {ours_probe / theirs:.2f}x iputils ping -i 0 (<= 1.5x)",
            ours_probe / theirs <= 1.5,
        )
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
