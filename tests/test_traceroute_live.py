"""
:mod:`netproto.traceroute` on real sockets, on loopback only (127.0.0.1 and
::1): every method and socket kind reaches the destination in one hop, a
service on the probed port leaves the probe unanswered, a constant flow keeps
its ports, cancelling stops and closes.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.trial.unittest import TestCase

from netproto.traceroute import DATAGRAM, ICMP, PARIS, UDP, TraceSummary, trace, traceroute
from tests._helpers import root_skip_reason
from tests._servers import has_ipv6

LOOPBACK = {4: "127.0.0.1", 6: "::1"}


def _ping_sockets_allowed() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ping_group_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return False
    return low <= os.getgid() <= high


class LoopbackTests(TestCase):
    """One hop to loopback, answered by the kernel itself."""

    async def reach(self, version: int, method: str, mode: str) -> TraceSummary:
        if version == 6 and not has_ipv6():
            raise self.skipTest("no IPv6 loopback")
        summary = await traceroute(reactor, LOOPBACK[version], method=method, mode=mode, wait=2.0)
        self.assertEqual(len(summary.hops), 1)
        hop = summary.hops[0]
        self.assertEqual([r and r.address for r in hop.replies], [LOOPBACK[version]] * 3)
        self.assertTrue(hop.reached)
        self.assertTrue(summary.reached)
        self.assertEqual((summary.mode, summary.method), (mode, method))
        return summary

    async def test_udp_error_queue(self) -> None:
        """UDP probes, answers from the socket's error queue (no privilege): port unreachable."""
        for version in (4, 6):
            summary = await self.reach(version, UDP, "dgram")
            reply = summary.hops[0].replies[0]
            assert reply is not None
            self.assertEqual((reply.type, reply.code), (3, 3) if version == 4 else (1, 4))

    async def test_udp_raw(self) -> None:
        """UDP probes, answers from a raw ICMP socket (root)."""
        reason = root_skip_reason()
        if reason:
            raise self.skipTest(reason)
        for version in (4, 6):
            await self.reach(version, UDP, "raw")

    async def test_constant_flow(self) -> None:
        """A constant flow to a closed port reaches loopback too, either socket kind."""
        modes = ["dgram"] if root_skip_reason() else ["dgram", "raw"]
        for mode in modes:
            for version in (4, 6):
                await self.reach(version, PARIS, mode)

    async def test_icmp_raw(self) -> None:
        """ICMP echo probes on a raw socket (root): the echo reply ends the trace."""
        reason = root_skip_reason()
        if reason:
            raise self.skipTest(reason)
        for version in (4, 6):
            summary = await self.reach(version, ICMP, "raw")
            reply = summary.hops[0].replies[0]
            assert reply is not None
            self.assertEqual(reply.type, 0 if version == 4 else 129)

    async def test_icmp_ping_socket(self) -> None:
        """ICMP echo probes on a Linux ping socket, where ping_group_range admits us."""
        if not _ping_sockets_allowed():
            raise self.skipTest("net.ipv4.ping_group_range does not admit this group")
        for version in (4, 6):
            await self.reach(version, ICMP, "dgram")


class TimeoutTests(TestCase):
    """Who gives a probe up: the trace, never the ICMP socket underneath."""

    async def test_icmp_socket_waits_longer(self) -> None:
        """
        Requests outlive the trace's wait in the ICMP socket's table, so that
        an answer read late (a loaded host, a flood of errors) is never turned
        into a star by the socket's own timeout before the trace has read it.
        """
        reason = root_skip_reason()
        if reason and not _ping_sockets_allowed():
            raise self.skipTest(reason)
        from netproto.ping import IcmpSocket

        timeouts: list[float] = []
        send = IcmpSocket.send

        def recording(sock: IcmpSocket, probe: Any, timeout: float) -> bool:
            timeouts.append(timeout)
            return send(sock, probe, timeout)

        self.patch(IcmpSocket, "send", recording)
        summary = await traceroute(reactor, "127.0.0.1", method=ICMP, wait=0.5)
        self.assertTrue(summary.reached)
        self.assertEqual(len(timeouts), 3)
        self.assertTrue(all(t > 0.5 for t in timeouts), timeouts)


class ServiceTests(TestCase):
    """What reaches a UDP service listening on the probed port."""

    def listener(self, version: int) -> socket.socket:
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind((LOOPBACK[version], 0))
        sock.setblocking(False)
        return sock

    def received(self, sock: socket.socket) -> list[tuple[bytes, Any]]:
        found = []
        while True:
            try:
                found.append(sock.recvfrom(2048))
            except BlockingIOError:
                return found

    async def test_service_answers_nothing(self) -> None:
        """A service on the port swallows the probe: no ICMP comes back, the probe is ``*``."""
        for version in (4, 6):
            if version == 6 and not has_ipv6():
                continue
            sock = self.listener(version)
            port = sock.getsockname()[1]
            summary = await traceroute(
                reactor,
                LOOPBACK[version],
                method=UDP,
                mode="dgram",
                probes=1,
                max_hops=1,
                wait=0.3,
                port=port,
            )
            self.assertEqual(summary.hops[0].replies, (None,))
            self.assertFalse(summary.reached)
            self.assertEqual(len(self.received(sock)), 1)

    async def test_service_answer_is_the_destination(self) -> None:
        """A UDP datagram back from the probed port ends the trace, as traceroute(8) counts it."""

        class Echo(DatagramProtocol):
            def datagramReceived(self, data: bytes, address: Any) -> None:
                self.transport.write(data, address)  # type: ignore[attr-defined]

        listening = reactor.listenUDP(0, Echo(), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(listening.stopListening)
        modes = ["dgram"] if root_skip_reason() else ["dgram", "raw"]
        for mode in modes:
            summary = await traceroute(
                reactor,
                "127.0.0.1",
                method=PARIS,
                mode=mode,
                wait=2.0,
                here=0,
                port=listening.getHost().port,
            )
            self.assertTrue(summary.reached, mode)
            self.assertEqual(
                [(r.address, r.type, r.mark) for r in summary.hops[0].replies if r],
                [("127.0.0.1", DATAGRAM, "")] * 3,
                mode,
            )

    async def test_constant_flow_keeps_its_ports(self) -> None:
        """Every probe of a constant flow has the same source and destination port."""
        sock = self.listener(4)
        port = sock.getsockname()[1]
        summary = await traceroute(
            reactor, "127.0.0.1", method=PARIS, mode="dgram", max_hops=2, wait=0.2, port=port
        )
        got = self.received(sock)
        self.assertEqual(len(got), 6)
        self.assertEqual(len({source[1] for _, source in got}), 1)
        self.assertEqual(len({data[:8] for data, _ in got}), 6)
        self.assertEqual({len(data) for data, _ in got}, {32})
        self.assertEqual([hop.replies for hop in summary.hops], [(None,) * 3] * 2)


class StoppingTests(TestCase):
    """Cancelling the one-call form, stopping a running trace."""

    async def test_cancel(self) -> None:
        """Cancelling traceroute()'s Deferred stops the trace; it fires with the summary so far."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        pending = traceroute(
            reactor, "127.0.0.1", method=PARIS, mode="dgram", wait=30.0, port=sock.getsockname()[1]
        )
        waiter: Deferred[None] = Deferred()
        reactor.callLater(0.05, waiter.callback, None)  # type: ignore[attr-defined]
        await waiter
        pending.cancel()
        summary = await pending
        self.assertTrue(summary.stopped)
        self.assertEqual(summary.hops, ())

    async def test_stop_running(self) -> None:
        """trace(...).stop() ends the trace; hops iterated so far stay valid."""
        running = trace(reactor, "127.0.0.1", mode="dgram", wait=2.0)
        hops = [hop async for hop in running]
        summary = await running.done
        self.assertEqual(len(hops), 1)
        running.stop()
        self.assertTrue(summary.reached)
