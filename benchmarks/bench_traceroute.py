"""
Benchmark ``netproto traceroute`` against Debian's traceroute and tracepath,
side by side, on a chain of network namespaces this program builds (three
routers between a client and a target, as the tests build it) and deletes at
the end. Nothing is sent outside the namespaces.

Each round runs every contender once, in turn (A B C A B C ...), because the
machine is shared and noisy; the tables give medians over the rounds of the
wall time and the CPU time (user + system) of each whole command, and, for
netproto, of the trace alone inside one process (the library, start-up
excluded: what a Twisted program pays per trace). Scenarios: the four-hop
path over UDP and over ICMP, and the same path with the second router
silent (rate-limited to nothing), where how long a silent hop is waited for
decides everything.

Needs root (namespaces). Run:
``.venv/bin/python benchmarks/bench_traceroute.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tests._traceroute_netns import Namespaces, build_chain, netproto, warm_up

TARGET = "10.17.4.2"

# Runs inside the client namespace: N traces in one process, the time and CPU of each.
LIBRARY = """
import json, sys, time
from twisted.internet import task
from netproto.traceroute import trace

async def main(reactor, target, method, count):
    walls, cpus = [], []
    for _ in range(int(count)):
        started, cpu = time.perf_counter(), time.process_time()
        running = trace(reactor, target, method=method)
        summary = await running.done
        assert summary.reached, summary
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    print(json.dumps({"wall": walls, "cpu": cpus}))

task.react(main, sys.argv[1:])
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(spaces: Namespaces, client: str, argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one command run in the client namespace."""
    cpu = _children_cpu()
    started = time.perf_counter()
    result = spaces.run(client, *argv, timeout=60)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {result.stderr.strip() or result.stdout}")
    return wall, _children_cpu() - cpu


def table(title: str, rows: dict[str, tuple[list[float], list[float]]], reference: str) -> None:
    """Medians of wall and CPU time; each row's wall time as a share of the first row's."""
    print(f"\n{title}")
    print(f"| {'contender':<34} | {'wall ms':>9} | {'CPU ms':>8} | {'wall / first row':>17} |")
    print(f"|{'-' * 36}|{'-' * 11}|{'-' * 10}|{'-' * 19}|")
    base = statistics.median(rows[reference][0])
    for name, (walls, cpus) in rows.items():
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        ratio = "-" if name == reference else f"{wall / base:.3f}x"
        print(f"| {name:<34} | {wall * 1000:>9.1f} | {cpu * 1000:>8.1f} | {ratio:>17} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    peers = {tool: shutil.which(tool) is not None for tool in ("traceroute", "tracepath")}
    for tool, present in peers.items():
        if not present:
            print(f"{tool} is not installed: skipping it")
    spaces = Namespaces()
    try:
        roles = build_chain(spaces)
        client = roles["c"]
        warm_up(spaces, client)
        scenarios: list[tuple[str, dict[str, list[str]]]] = [
            (
                "UDP, 4 hops, 3 probes each (the default)",
                {
                    "netproto traceroute -n": netproto("traceroute", "-n", TARGET),
                    "traceroute -n": ["traceroute", "-n", TARGET],
                    "tracepath -n (1 probe a hop)": ["tracepath", "-n", TARGET],
                },
            ),
            (
                "ICMP echo (-I), 4 hops",
                {
                    "netproto traceroute -n -I": netproto("traceroute", "-n", "-I", TARGET),
                    "traceroute -n -I": ["traceroute", "-n", "-I", TARGET],
                },
            ),
        ]
        for title, contenders in scenarios:
            runnable = {
                name: argv
                for name, argv in contenders.items()
                if argv[0] not in peers or peers[argv[0]]
            }
            rows: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in runnable}
            rows["netproto trace(), in process"] = ([], [])
            method = "icmp" if "ICMP" in title else "udp"
            for _ in range(args.rounds):
                for name, argv in runnable.items():
                    wall, cpu = timed(spaces, client, argv)
                    rows[name][0].append(wall)
                    rows[name][1].append(cpu)
                inside = spaces.run(
                    client, sys.executable, "-c", LIBRARY, TARGET, method, "5", timeout=60
                )
                if inside.returncode != 0:
                    raise SystemExit(f"library run failed: {inside.stderr[-1000:]}")
                measured = json.loads(inside.stdout.splitlines()[-1])
                rows["netproto trace(), in process"][0].extend(measured["wall"])
                rows["netproto trace(), in process"][1].extend(measured["cpu"])
            table(title, rows, next(iter(runnable)))
        silent = {"net.ipv4.icmp_ratelimit": 1000000, "net.ipv6.icmp.ratelimit": 1000000}
        spaces.sysctl(roles["r2"], **silent)
        contenders = {
            "netproto traceroute -n": netproto("traceroute", "-n", TARGET),
            "traceroute -n": ["traceroute", "-n", TARGET],
            "netproto traceroute -n -w 5,0,0": netproto("traceroute", "-n", "-w", "5,0,0", TARGET),
        }
        if not peers["traceroute"]:
            del contenders["traceroute -n"]
        rows = {name: ([], []) for name in contenders}
        for _ in range(max(1, args.rounds // 3)):
            for name, argv in contenders.items():
                wall, cpu = timed(spaces, client, argv)
                rows[name][0].append(wall)
                rows[name][1].append(cpu)
        table("UDP, 4 hops, the second silent (-w 5,3,10 unless told)", rows, next(iter(rows)))
    finally:
        spaces.close()


if __name__ == "__main__":
    main()
