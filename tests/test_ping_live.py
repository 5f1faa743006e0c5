"""
netproto.ping on real sockets, on the host's loopback only (127.0.0.1,
127.0.0.0/24 and ::1): raw sockets as root, unprivileged ping sockets as a
user whose group ``net.ipv4.ping_group_range`` admits (CI runs this file both
ways). Other processes may be pinging loopback at the same time: every
assertion holds whatever else is on the wire.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import TestCase

from netproto.ping import PingClient, ProbeResult, ping, sweep
from tests._helpers import icmp_mode, ping_skip_reason, raw_skip_reason


class LiveTests(TestCase):
    """Real probes over the loopback interface, on a raw socket or a ping socket."""

    skip = ping_skip_reason()

    def client(self, **options: Any) -> PingClient:
        client = PingClient(reactor, icmp_mode() or "auto", **options)
        self.addCleanup(client.close)
        return client

    def test_ipv4(self) -> Deferred[None]:
        """Three probes to 127.0.0.1: three replies, in order, no duplicates, RTTs > 0."""

        async def run() -> None:
            results: list[ProbeResult] = []
            running = self.client().ping(
                "127.0.0.1", count=3, interval=0.02, on_result=results.append
            )
            summary = await running.done
            self.assertEqual(
                (
                    summary.transmitted,
                    summary.received,
                    summary.duplicates,
                    summary.damaged,
                    summary.errors,
                ),
                (3, 3, 0, 0, 0),
            )
            self.assertEqual(
                [(r.kind, r.seq, r.source, r.bytes) for r in results],
                [("reply", n, "127.0.0.1", 64) for n in (1, 2, 3)],
            )
            self.assertGreater(summary.min or 0, 0)
            self.assertEqual(results[0].ttl, 64)

        return ensureDeferred(run())

    def test_ipv6(self) -> Deferred[None]:
        """Two probes to ::1 over an ICMPv6 socket, with the hop limit."""

        async def run() -> None:
            results: list[ProbeResult] = []
            running = self.client().ping("::1", count=2, interval=0.02, on_result=results.append)
            summary = await running.done
            self.assertEqual((summary.received, summary.duplicates), (2, 0))
            self.assertEqual(
                [(r.kind, r.source, r.ttl) for r in results], [("reply", "::1", 64)] * 2
            )

        return ensureDeferred(run())

    def test_async_iteration(self) -> Deferred[None]:
        """``async for`` over a live ping sees each reply, then ends."""

        async def run() -> None:
            running = self.client().ping("127.0.0.1", count=3, interval=0.01)
            seqs = [result.seq async for result in running]
            self.assertEqual(seqs, [1, 2, 3])

        return ensureDeferred(run())

    def test_one_call_forms(self) -> Deferred[None]:
        """ping() and sweep() open and close their own client."""

        async def run() -> None:
            summary = await ping(reactor, "127.0.0.1", count=2, interval=0.01)
            self.assertEqual(summary.received, 2)
            swept = await sweep(reactor, ["127.0.0.0/29", "::1"], rate=0)
            self.assertEqual((swept.targets, swept.alive), (7, 7))

        return ensureDeferred(run())

    def test_sweep(self) -> Deferred[None]:
        """127.0.0.0/24 and ::1 at full speed on one socket per family: 255 alive, none lost."""

        async def run() -> None:
            from netproto.ping import expand_targets

            hosts: list[Any] = []
            client = self.client()
            running = client.sweep(
                expand_targets(["127.0.0.0/24", "::1"]), rate=0, on_host=hosts.append
            )
            summary = await running.done
            sock = client.socket_for(4)
            if sock.mode == "raw":
                # The replies came through recvmmsg, in batches, where Linux has it.
                self.assertIsNotNone(sock._receiver)
            self.assertEqual(
                (summary.targets, summary.alive, summary.unreachable, summary.duplicates),
                (255, 255, 0, 0),
            )
            self.assertEqual(len({h.host for h in hosts}), 255)
            self.assertTrue(all(h.rtt is not None and h.rtt > 0 for h in hosts))

        return ensureDeferred(run())

    def test_colliding_identifiers(self) -> Deferred[None]:
        """Two clients forced onto one identifier and sequence: each sees only its replies."""

        async def run() -> None:
            first, second = self.client(), self.client()
            table1, table2 = first.socket_for(4).table, second.socket_for(4).table
            second.socket_for(4).set_ident(table1.ident)
            table2._next = table1._next
            one = first.ping("127.0.0.1", count=5, interval=0.01)
            two = second.ping("127.0.0.1", count=5, interval=0.01)
            summaries = [await one.done, await two.done]
            self.assertEqual(
                [(s.received, s.duplicates, s.damaged) for s in summaries], [(5, 0, 0), (5, 0, 0)]
            )
            self.assertGreaterEqual(table1.not_ours, 1)
            self.assertGreaterEqual(table2.not_ours, 1)

        return ensureDeferred(run())

    test_colliding_identifiers.skip = raw_skip_reason()  # type: ignore[attr-defined]

    def test_kernel_filter(self) -> Deferred[None]:
        """Other identifiers' replies never reach us: the socket's BPF filter drops them."""

        async def run() -> None:
            for address, version in (("127.0.0.1", 4), ("::1", 6)):
                first, second = self.client(), self.client()
                one = first.ping(address, count=5, interval=0.005)
                two = second.ping(address, count=5, interval=0.005)
                summaries = [await one.done, await two.done]
                self.assertEqual([s.received for s in summaries], [5, 5])
                for client in (first, second):
                    sock = client.socket_for(version)
                    self.assertTrue(sock.filtered)
                    self.assertEqual(sock.table.not_ours, 0)

        return ensureDeferred(run())

    test_kernel_filter.skip = raw_skip_reason()  # type: ignore[attr-defined]

    def test_alongside_iputils(self) -> Deferred[None]:
        """iputils ping hammering loopback at the same time changes none of our counts."""
        if shutil.which("ping") is None:
            raise self.skipTest("ping (iputils) is not installed")

        async def run() -> None:
            other = subprocess.Popen(
                ["ping", "-q", "-c", "200", "-i", "0.002", "127.0.0.1"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                running = self.client().ping("127.0.0.1", count=20, interval=0.005)
                summary = await running.done
            finally:
                other.wait(timeout=30)
            self.assertEqual(
                (
                    summary.transmitted,
                    summary.received,
                    summary.duplicates,
                    summary.damaged,
                    summary.late,
                ),
                (20, 20, 0, 0, 0),
            )

        return ensureDeferred(run())

    def test_source_ttl_and_size(self) -> Deferred[None]:
        """-I 127.0.0.1, -t 3 and a 20,000-byte payload: the reply comes back whole."""

        async def run() -> None:
            results: list[ProbeResult] = []
            client = self.client(source="127.0.0.1", ttl=3)
            running = client.ping("127.0.0.1", count=1, size=20000, on_result=results.append)
            summary = await running.done
            self.assertEqual(summary.received, 1)
            self.assertEqual(results[0].bytes, 20008)

        return ensureDeferred(run())
