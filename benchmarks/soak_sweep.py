"""
Soak test, outside the normal suite (never collected: not under tests/): a
whole /8 of loopback (16,777,214 targets, every one answering) swept by
``netproto fping -q -s -i 0 -r 0 -g`` (fping's flags: nothing per target,
the statistics block with the elapsed time at the end), to completion, with
its peak RSS (``wait4``), CPU time and rate, beside a /16 from the same run
for the memory growth.

Needs root (raw sockets). Takes minutes. Run:
``.venv/bin/python benchmarks/soak_sweep.py [--net 127.0.0.0/8] [--processes N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench_sweep import NETPROTO_FPING, measure


def run(net: str, extra: list[str]) -> None:
    """Sweep *net* once and print what it took."""
    started = time.strftime("%H:%M:%S")
    command = [*NETPROTO_FPING, "-q", "-s", "-i", "0", "-r", "0", "-t", "1000", *extra, "-g", net]
    out, wall, rss, cpu = measure(command)
    figures = [line.strip() for line in out.splitlines() if line.strip()]
    print(f"{started} {net} {' '.join(extra)}")
    print(f"  {'; '.join(figures)}")
    print(f"  wall {wall:.1f} s, peak RSS {rss / 1024:.1f} MiB, CPU {cpu:.1f} s")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--net", default="127.0.0.0/8", help="the range (default 127.0.0.0/8)")
    parser.add_argument("--processes", type=int, help="as netproto fping --processes")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak_sweep.py needs root (raw ICMP sockets)")
    extra = ["--processes", str(args.processes)] if args.processes else []
    run("127.0.0.0/16", extra)
    run(args.net, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
