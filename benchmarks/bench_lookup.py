"""
How fast are netproto's lookups, against Twisted's own pieces, measured in the
same run (rounds interleaved A B A B, best round kept: the machine is shared).

1. A hosts file of 50,000 lines: netproto's :class:`HostsFile` (parsed once)
   against ``twisted.names.hosts.Resolver`` (which reads the file on every
   lookup), both asked the same names.
2. DNS on loopback: :meth:`Lookup.resolve_ip` (CNAME chasing, ordering,
   error mapping) against a bare ``twisted.names.client.Resolver.lookupAddress``
   on the same server, sequential queries.

Run: ``.venv/bin/python benchmarks/bench_lookup.py``. Prints figures; asserts
nothing. Every query goes to a server this script starts on 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from twisted.internet import defer, task
from twisted.names import client, hosts

from netproto.lookup import HostsFile, Lookup
from tests._dns_server import DNSServer, Zone

LINES = 50_000
NAMES = 200
QUERIES = 300
ROUNDS = 3


def _hosts_file() -> tuple[str, list[str]]:
    names = [f"host{i}.example.test" for i in range(LINES)]
    fd, path = tempfile.mkstemp(prefix="bench-hosts-")
    with os.fdopen(fd, "w") as f:
        for i, name in enumerate(names):
            f.write(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255} {name}\n")
    return path, random.Random(1).sample(names, NAMES)


async def _hosts_bench() -> None:
    path, asked = _hosts_file()
    try:
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            parsed = HostsFile.read(path)
            for name in asked:
                assert parsed.addresses(name)
            ours.append(time.perf_counter() - start)

            resolver = hosts.Resolver(file=path)
            start = time.perf_counter()
            for name in asked:
                await resolver.lookupAddress(name)
            theirs.append(time.perf_counter() - start)
        a, b = min(ours), min(theirs)
        print(f"hosts file, {LINES} lines, {NAMES} lookups:")
        print(f"  netproto HostsFile (parse once + lookups): {a * 1e3:8.1f} ms")
        print(f"  twisted.names.hosts.Resolver:              {b * 1e3:8.1f} ms")
        print(f"  ratio twisted/netproto: {b / a:.1f}x")
    finally:
        os.unlink(path)


async def _dns_bench(reactor: Any) -> None:
    zone = Zone({f"n{i}.test": [("A", f"127.0.{i >> 8}.{i & 255}")] for i in range(QUERIES)})
    server = DNSServer(zone)
    address = server.start(reactor)
    names = [f"n{i}.test" for i in range(QUERIES)]
    try:
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(ROUNDS):
            lookup = Lookup(reactor, servers=[address], timeout=5)
            start = time.perf_counter()
            for name in names:
                await lookup.resolve_ip(name, "ip4")
            ours.append(time.perf_counter() - start)

            bare = client.Resolver(servers=[address], reactor=reactor)
            start = time.perf_counter()
            for name in names:
                await bare.lookupAddress(name)
            theirs.append(time.perf_counter() - start)
        a, b = min(ours), min(theirs)
        print(f"DNS on loopback, {QUERIES} sequential A lookups:")
        print(f"  netproto Lookup.resolve_ip(ip4): {QUERIES / a:8.0f} lookups/s")
        print(f"  twisted.names client, bare:      {QUERIES / b:8.0f} lookups/s")
        print(f"  ratio netproto/bare throughput: {b / a:.2f}")
    finally:
        await server.stop()


async def main(reactor: Any) -> None:
    await _hosts_bench()
    await _dns_bench(reactor)


if __name__ == "__main__":
    task.react(lambda reactor: defer.Deferred.fromCoroutine(main(reactor)))
