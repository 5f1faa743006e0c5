"""
:class:`netproto.ping.Sweep`, the stateless sweep, driven by a fake raw
socket and a fake clock: replies validated by their proof alone (forged,
damaged, replayed from another address, duplicated and late ones refused),
errors matched through the quoted probe, shards, retries, resuming, and
memory that holds one bit per target.
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

import netproto.ping._sweep as module
from netproto.ping import Sweep, TargetSpace
from netproto.ping._batch import SLOTS, BatchReceiver, BatchSender, batch_receiver
from netproto.util import checksum
from tests._icmp_packets import icmp_error, ipv4
from tests.test_ping_client import US, FakeSocket, Harness


def reply_to(request: bytes, source: str) -> bytes:
    """The reply *source* would send to *request*, IPv4 header included."""
    return FakeSocket.echo(request, source)[0]


def tampered(request: bytes, at: int) -> bytes:
    """*request* as a reply with one payload byte flipped at *at*, checksum made good again."""
    reply = bytearray(reply_to(request, "0.0.0.0")[20:])
    reply[8 + at] ^= 0xFF
    struct.pack_into("!H", reply, 2, 0)
    struct.pack_into("!H", reply, 2, checksum(reply))
    return bytes(reply)


class StatelessSweepTests(SynchronousTestCase):
    """Matching by proof, not by table."""

    def setUp(self) -> None:
        self.h = Harness()
        self.hosts: list[Any] = []

    def sweep(self, targets: list[str], **options: Any) -> Sweep:
        options.setdefault("on_host", self.hosts.append)
        return self.h.client.sweep(targets, **options)

    def test_every_target_once_in_permuted_order(self) -> None:
        """A /24 at full speed: 254 probes, each target once, not in address order."""
        sweep = self.sweep(["127.0.0.0/24"], rate=0)
        summary = self.successResultOf(sweep.done)
        sent = [address[0] for _, address in self.h.fake.sent]
        self.assertEqual(sorted(sent), sorted(f"127.0.0.{i}" for i in range(1, 255)))
        self.assertNotEqual(sent, sorted(sent, key=lambda a: int(a.rsplit(".", 1)[1])))
        self.assertEqual((summary.targets, summary.alive, summary.received), (254, 254, 254))
        self.assertEqual(len(self.hosts), 254)

    def test_round_trip_totals(self) -> None:
        """The summary's shortest, longest and summed round trips are those of the verdicts."""
        self.h.fake.answer = lambda data, target: []
        sweep = self.sweep(["127.0.0.0/29"], rate=0, timeout=1.0)
        for delay, (data, (target, _)) in enumerate(list(self.h.fake.sent), 1):
            self.h.reactor.advance(0.01 * delay)
            self.h.fake.inbox.append(reply_to(data, target))
            self.h.socket.doRead()
        summary = self.successResultOf(sweep.done)
        rtts = [r.rtts[0] for r in self.hosts]
        self.assertEqual(len(rtts), 6)
        self.assertEqual(len(set(rtts)), 6)
        self.assertEqual(summary.rtt_min, min(rtts))
        self.assertEqual(summary.rtt_max, max(rtts))
        self.assertAlmostEqual(summary.rtt_total, sum(rtts))

    def test_seed_repeats_the_order(self) -> None:
        """The same seed, the same order; another seed, another order."""
        orders = []
        for seed in (7, 7, 8):
            h = Harness()
            self.successResultOf(h.client.sweep(["127.0.0.0/26"], rate=0, seed=seed).done)
            orders.append([a[0] for _, a in h.fake.sent])
        self.assertEqual(orders[0], orders[1])
        self.assertNotEqual(orders[0], orders[2])

    def test_forged_replies_never_count(self) -> None:
        """
        Replies whose proof does not verify for their source: another
        address's reply, a flipped MAC byte, an altered send time, another
        sweep's key, a bad checksum, an altered fill. Only the genuine
        reply is credited; the bad checksum and the fill are counted damaged.
        """
        h = self.h
        other = Harness()
        self.successResultOf(other.client.sweep(["127.0.0.3"], rate=0).done)
        foreign = other.fake.sent[0][0]

        def answer(data: bytes, target: str) -> list[bytes]:
            good = reply_to(data, target)
            bad_sum = bytearray(good)
            bad_sum[22] ^= 1
            fill = bytearray(good)
            fill[-1] ^= 1
            struct.pack_into("!H", fill, 22, 0)
            struct.pack_into("!H", fill, 22, checksum(fill[20:]))
            return [
                reply_to(data, "127.0.0.9"),
                ipv4(target, US, tampered(data, 0)),
                ipv4(target, US, tampered(data, 15)),
                reply_to(foreign, target),
                bytes(bad_sum),
                bytes(fill),
                good,
            ]

        h.fake.answer = answer
        sweep = self.sweep(["127.0.0.3"], timeout=1.0)
        summary = self.successResultOf(sweep.done)
        self.assertEqual((summary.received, summary.alive, summary.damaged), (1, 1, 2))
        self.assertEqual(summary.duplicates, 0)
        self.assertGreaterEqual(h.socket.table.not_ours, 4)

    def test_silent_host(self) -> None:
        """No reply: unreachable when the window closes, not before."""
        self.h.fake.answer = lambda data, target: []
        sweep = self.sweep(["127.0.0.2", "127.0.0.3"], timeout=1.0)
        self.h.reactor.advance(0.9)
        self.assertEqual(self.hosts, [])
        self.h.reactor.advance(0.2)
        summary = self.successResultOf(sweep.done)
        self.assertEqual((summary.alive, summary.unreachable), (0, 2))
        self.assertEqual(
            sorted((r.host, r.alive) for r in self.hosts),
            [
                ("127.0.0.2", False),
                ("127.0.0.3", False),
            ],
        )

    def test_duplicates_and_late(self) -> None:
        """Two copies of a reply: one credited, one duplicate; a silent target unreachable."""
        h = self.h
        held: list[bytes] = []

        def answer(data: bytes, target: str) -> list[bytes]:
            if target == "127.0.0.3":
                held.append(reply_to(data, target))
                return []
            return [reply_to(data, target)] * 2

        h.fake.answer = answer
        sweep = self.sweep(["127.0.0.2", "127.0.0.3", "127.0.0.4"], timeout=1.0, count=1)
        h.reactor.advance(0.5)
        h.reactor.advance(0.6)
        h.fake.inbox.extend(held)
        h.socket.doRead()
        summary = self.successResultOf(sweep.done)
        self.assertEqual((summary.received, summary.duplicates), (2, 2))
        self.assertEqual(summary.unreachable, 1)

    def test_late_within_a_retry(self) -> None:
        """With -r 1, a first-pass reply arriving after its timeout is late; the retry's counts."""
        h = self.h
        held: list[bytes] = []

        def answer(data: bytes, target: str) -> list[bytes]:
            held.append(reply_to(data, target))
            return []

        h.fake.answer = answer
        sweep = self.sweep(["127.0.0.2"], timeout=1.0, retries=1)
        self.assertEqual(len(h.fake.sent), 1)
        h.reactor.advance(1.0)
        self.assertEqual(len(h.fake.sent), 2)
        h.fake.inbox.extend(held)
        h.reactor.advance(0.5)
        h.socket.doRead()
        summary = self.successResultOf(sweep.done)
        self.assertEqual((summary.transmitted, summary.received, summary.late), (2, 1, 1))
        self.assertEqual([(r.host, r.transmitted) for r in self.hosts], [("127.0.0.2", 2)])

    def test_retries_only_the_unanswered(self) -> None:
        """-r 2: silent targets get three probes, answering ones one."""
        h = self.h
        h.fake.answer = lambda data, target: (
            [reply_to(data, target)] if target.endswith((".1", ".3")) else []
        )
        sweep = self.sweep(["127.0.0.0/29"], timeout=1.0, retries=2)
        for _ in range(3):
            h.reactor.advance(1.0)
        summary = self.successResultOf(sweep.done)
        counts: dict[str, int] = {}
        for _, address in h.fake.sent:
            counts[address[0]] = counts.get(address[0], 0) + 1
        self.assertEqual(counts["127.0.0.1"], 1)
        self.assertEqual(counts["127.0.0.2"], 3)
        self.assertEqual((summary.alive, summary.unreachable, summary.transmitted), (2, 4, 14))

    def test_error_through_the_quoted_probe(self) -> None:
        """
        An unreachable quoting our probe is credited to its target; one
        quoting a probe with a forged MAC, or only 8 bytes of it, is not.
        """
        h = self.h

        def answer(data: bytes, target: str) -> list[bytes]:
            forged = data[:8] + bytes([data[8] ^ 1]) + data[9:]
            return [
                ipv4("127.0.0.9", US, icmp_error(3, 1, ipv4(US, target, forged))),
                ipv4("127.0.0.9", US, icmp_error(3, 1, ipv4(US, target, data[:8]))),
                ipv4("127.0.0.9", US, icmp_error(3, 1, ipv4(US, target, data))),
            ]

        h.fake.answer = answer
        sweep = self.sweep(["127.0.0.4"], timeout=1.0)
        summary = self.successResultOf(sweep.done)
        self.assertEqual((summary.errors, summary.alive, summary.unreachable), (1, 0, 1))
        self.assertEqual(self.hosts[0].error, "Destination Host Unreachable from 127.0.0.9")

    def test_rounds_statistics(self) -> None:
        """-c 3: each target reported once, with its three RTTs, when its last reply comes."""
        h = self.h
        sweep = self.sweep(["127.0.0.2", "127.0.0.3"], count=3, interval=1.0)
        h.reactor.advance(1.0)
        self.assertEqual(self.hosts, [])
        h.reactor.advance(1.0)
        summary = self.successResultOf(sweep.done)
        self.assertEqual((summary.transmitted, summary.received), (6, 6))
        self.assertEqual([len(r.rtts) for r in self.hosts], [3, 3])

    def test_shards_cover_every_target_once(self) -> None:
        """Three shards of one seed: every target of a /23 exactly once between them."""
        seen: list[str] = []
        for k in range(3):
            h = Harness()
            running = h.client.sweep(["127.0.0.0/23"], rate=0, seed=5, shard=(k, 3))
            summary = self.successResultOf(running.done)
            self.assertEqual(summary.alive, summary.targets)
            seen += [a[0] for _, a in h.fake.sent]
        self.assertEqual(len(seen), 510)
        self.assertEqual(len(set(seen)), 510)

    def test_resume(self) -> None:
        """Stopped half way, resumed at its resume point: every target probed, none twice."""
        h = self.h
        h.fake.answer = lambda data, target: []
        sweep = self.sweep(["127.0.0.0/26"], rate=100.0, timeout=0.05, seed=3)
        h.reactor.pump([0.01] * 30)
        sweep.stop()
        summary = self.successResultOf(sweep.done)
        self.assertFalse(summary.complete)
        first = [a[0] for _, a in h.fake.sent]
        h2 = Harness()
        again = h2.client.sweep(["127.0.0.0/26"], rate=0, seed=3, start=summary.resume)
        self.successResultOf(again.done)
        second = [a[0] for _, a in h2.fake.sent]
        # The probes whose window was still open are sent again; the rest are not.
        overlap = set(first) & set(second)
        self.assertLessEqual(len(overlap), 6)
        self.assertEqual(set(first) | set(second), {f"127.0.0.{i}" for i in range(1, 63)})

    def test_exclusions(self) -> None:
        """Excluded ranges are never probed."""
        space = TargetSpace(["127.0.0.0/24"], exclude=["127.0.0.0/25", "127.0.0.200-127.0.0.210"])
        sweep = self.h.client.sweep(space, rate=0)
        summary = self.successResultOf(sweep.done)
        sent = {a[0] for _, a in self.h.fake.sent}
        self.assertEqual(summary.targets, 127 - 11)
        self.assertFalse(any(int(a.rsplit(".", 1)[1]) < 128 for a in sent))
        self.assertNotIn("127.0.0.205", sent)

    def test_one_bit_per_target(self) -> None:
        """The per-target state is a bitmap of N bits (N*count with rounds)."""
        sweep = self.h.client.sweep(["127.0.0.0/22"], rate=0)
        self.successResultOf(sweep.done)
        self.assertEqual(len(sweep._bits), (1022 + 7) // 8)
        self.assertEqual(sweep._stats, {})

    def test_small_payload_refused(self) -> None:
        """A payload too small for the proof is refused at once."""
        self.assertRaises(ValueError, self.h.client.sweep, ["127.0.0.2"], size=19)


class FakeBatch(BatchSender):
    """
    A BatchSender of 8 slots whose ``sendmmsg`` hands the slots to a
    FakeSocket: the kernel full once (5 of the first 8 taken), one failure
    (the first slot of the second batch).
    """

    def __init__(self, fake: FakeSocket, template: bytes) -> None:
        super().__init__(-1, template, slots=8)
        self.fake = fake
        self.full_once = True
        self.block_next = False
        self.flushes = 0

    def flush(self, count: int) -> tuple[int, list[tuple[int, int]]]:
        self.flushes += 1
        return super().flush(count)

    def _send(self, start: int, count: int) -> tuple[int, int]:
        if self.block_next:
            self.block_next = False
            return -1, errno.EAGAIN
        if self.full_once and (start, count) == (0, 8):
            self.full_once, self.block_next, count = False, True, 5
        elif self.flushes == 2 and start == 0:
            return -1, errno.EHOSTUNREACH
        for slot in range(start, start + count):
            data = bytes(self.data[slot * self.size : (slot + 1) * self.size])
            address = socket.inet_ntoa(bytes(self.names[slot * 16 + 4 : slot * 16 + 8]))
            self.fake.sendto(data, (address, 0))
        return count, 0


class BatchedSendTests(SynchronousTestCase):
    """The sendmmsg path's bookkeeping: the walk rewinds to the first probe not sent."""

    def test_rewind_and_failures(self) -> None:
        """
        A batch the kernel takes only in part is sent again from its first
        unsent probe; a probe that fails for good is an error: every target
        once, none lost, none twice.
        """
        h = Harness()
        hosts: list[Any] = []
        batches: list[FakeBatch] = []

        def fake_batch(sock: Any, template: bytes) -> FakeBatch:
            batches.append(FakeBatch(h.fake, template))
            return batches[-1]

        original = module.batch_sender
        module.batch_sender = fake_batch  # type: ignore[assignment]
        self.addCleanup(setattr, module, "batch_sender", original)
        sweep = h.client.sweep(["127.0.0.0/27"], rate=0, on_host=hosts.append)
        h.reactor.advance(0.01)
        h.reactor.advance(1.0)
        summary = self.successResultOf(sweep.done)
        sent = [a[0] for _, a in h.fake.sent]
        self.assertEqual(len(sent), len(set(sent)))
        self.assertEqual(len(sent), 29)
        self.assertEqual((summary.alive, summary.unreachable, summary.errors), (29, 1, 1))
        self.assertEqual(summary.transmitted, 30)
        failed = [r for r in hosts if not r.alive]
        self.assertEqual(failed[0].error, "No route to host")
        self.assertEqual(len(batches), 1)
        self.assertGreaterEqual(batches[0].flushes, 4)


class BatchReceiverTests(SynchronousTestCase):
    """recvmmsg through ctypes, on a pair of local datagram sockets (no network)."""

    def setUp(self) -> None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(probe.close)
        if batch_receiver(probe, 64) is None:
            raise SkipTest("no recvmmsg in this C library")
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(self.ours.close)
        self.addCleanup(self.theirs.close)

    def test_batches_in_order(self) -> None:
        """Up to 64 datagrams a call, in order, each as sent; a longer one cut to the slot."""
        sent = [bytes([i]) * (1 + i % 50) for i in range(SLOTS + 6)]
        sent[3] = b"x" * 300
        for data in sent:
            self.theirs.send(data)
        receiver = BatchReceiver(self.ours.fileno(), 128)
        first = receiver.receive()
        self.assertEqual(len(first), SLOTS)
        self.assertEqual(first[3], b"x" * 128)
        self.assertEqual(first[:3] + first[4:], sent[:3] + sent[4:SLOTS])
        self.assertEqual(receiver.receive(), sent[SLOTS:])
        self.assertEqual(receiver.receive(), [])

    def test_limit(self) -> None:
        """*limit* bounds one call; the rest waits for the next."""
        for i in range(5):
            self.theirs.send(bytes([i]))
        receiver = BatchReceiver(self.ours.fileno(), 64)
        self.assertEqual(receiver.receive(2), [b"\x00", b"\x01"])
        self.assertEqual(receiver.receive(), [b"\x02", b"\x03", b"\x04"])

    def test_errors(self) -> None:
        """A descriptor that is not a socket: OSError (the socket's drain counts and goes on)."""
        with open(__file__, "rb") as f:
            receiver = BatchReceiver(f.fileno(), 64)
            self.assertRaises(OSError, receiver.receive)

    def test_only_raw_ipv4_sockets(self) -> None:
        """Fallback: no receiver for a socket of another family or for a stand-in object."""
        self.assertIsNone(batch_receiver(self.ours, 64))
        self.assertIsNone(batch_receiver(FakeSocket(), 64))
