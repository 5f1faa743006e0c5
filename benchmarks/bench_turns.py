"""
Benchmark the reactor turn: Twisted's epoll reactor as it comes, with
netproto's event dispatch alone (``fast_dispatch`` without its main loop), and
with both (what ``twistd netproto`` runs).

One reader on a socket pair writes its own next byte from each read, so every
reactor turn handles exactly one event: the case of a service with a single
busy client (one TCP echo connection, one UDP peer), where the per-turn cost
is paid once per request. A timed call an hour away is pending, as a service's
idle sweep is. Each figure is CPU microseconds per event (the ``send`` and
``recv`` system calls included), the median over interleaved rounds
(A B C, A B C, ...).

    .venv/bin/python benchmarks/bench_turns.py [--events 200000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import socket
import time
from statistics import median
from typing import Any

from twisted.internet.epollreactor import EPollReactor

from netproto import _twisted


class _PingPong:
    """A reader that sends itself the next byte until it has read *limit* times."""

    def __init__(self, reactor: Any, limit: int) -> None:
        self.mine, self.peer = socket.socketpair()
        self.reactor = reactor
        self.limit = limit
        self.reads = 0

    def fileno(self) -> int:
        return self.mine.fileno()

    def logPrefix(self) -> str:
        return "pingpong"

    def doRead(self) -> None:
        self.mine.recv(16)
        self.reads += 1
        if self.reads < self.limit:
            self.peer.send(b"x")
        else:
            self.reactor.stop()

    def connectionLost(self, reason: object) -> None:
        self.mine.close()
        self.peer.close()


def one_run(kind: str, events: int) -> float:
    """CPU microseconds per event on a fresh reactor of *kind*."""
    reactor: Any = EPollReactor()
    if kind != "twisted":
        if not _twisted.fast_dispatch(reactor):
            raise SystemExit("fast_dispatch cannot be installed on this Twisted")
        if kind == "dispatch":
            del reactor.mainLoop  # Twisted's own main loop, netproto's dispatch
    reactor.callLater(3600, lambda: None)
    reader = _PingPong(reactor, events)
    reactor.addReader(reader)
    reader.peer.send(b"x")
    started = time.process_time()
    reactor.run(installSignalHandlers=False)
    spent = time.process_time() - started
    reader.connectionLost(None)
    reactor._poller.close()
    return spent / events * 1e6


def main() -> None:
    """Interleave the three, print the medians and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per run")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    args = parser.parse_args()
    kinds = ("twisted", "dispatch", "netproto")
    runs: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            runs[kind].append(one_run(kind, args.events))
    base = median(runs["twisted"])
    print(f"# {args.events} events per run, {args.rounds} interleaved rounds, one event per turn")
    print(f"{'reactor':42} {'us/event':>9} {'vs Twisted':>11}")
    labels = {
        "twisted": "Twisted's epoll reactor",
        "dispatch": "+ netproto's event dispatch",
        "netproto": "+ netproto's main loop (twistd netproto)",
    }
    for kind in kinds:
        figure = median(runs[kind])
        print(f"{labels[kind]:42} {figure:9.3f} {figure / base:10.2f}x")


if __name__ == "__main__":
    main()
