"""
The back-to-back path of ``-i 0`` on a raw IPv4 socket (``iterate=False``),
driven by the fake socket of ``tests/test_ping_client.py``: the next probe
leaves when the reply is matched or after 10 ms, and forged, damaged,
foreign, mis-sequenced and duplicate replies are never credited.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto.ping import PingClient, ProbeResult
from netproto.util import checksum
from tests._helpers import raw_skip_reason
from tests._icmp_packets import icmp, ipv4
from tests.test_ping_client import US, FakeSocket, Harness


def _fields(request: bytes) -> tuple[int, int, bytes]:
    """Identifier, sequence number and payload of an echo request we sent."""
    ident, seq = struct.unpack("!HH", request[4:8])
    return ident, seq, request[8:]


def _reply(request: bytes, *, source: str = US, **changes: Any) -> bytes:
    """The IPv4 echo reply to *request*, with any of ident, seq, payload or good changed."""
    ident, seq, payload = _fields(request)
    ident = changes.get("ident", ident)
    seq = changes.get("seq", seq)
    payload = changes.get("payload", payload)
    return ipv4(source, US, icmp(0, 0, ident, seq, payload, good=changes.get("good", True)))


class RapidTests(SynchronousTestCase):
    """``ping(..., interval=0, iterate=False)`` on a raw IPv4 socket."""

    def setUp(self) -> None:
        self.h = Harness()
        self.results: list[ProbeResult] = []

    def ping(self, count: int | None = 5, **options: Any) -> Any:
        options.setdefault("timeout", 1.0)
        return self.h.client.ping(
            US,
            count=count,
            interval=0.0,
            iterate=False,
            on_result=self.results.append,
            **options,
        )

    def kinds(self) -> list[tuple[str, int]]:
        return [(r.kind, r.seq) for r in self.results]

    def test_back_to_back(self) -> None:
        """1,000 answered probes go in one call, with no timer per probe."""
        ping = self.ping(1000)
        self.assertEqual(len(self.h.fake.sent), 1000)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.transmitted, summary.received), (1000, 1000))
        self.assertEqual(self.kinds(), [("reply", n) for n in range(1, 1001)])
        self.assertEqual(self.h.reactor.getDelayedCalls(), [])

    def test_turns_of_the_reactor(self) -> None:
        """1,024 probes go between two turns of the reactor, the next ones from one timed call."""
        ping = self.ping(3000)
        self.assertEqual(len(self.h.fake.sent), 1024)
        (call,) = self.h.reactor.getDelayedCalls()
        self.assertEqual(call.getTime(), self.h.reactor.seconds())
        self.h.reactor.calls.remove(call)
        call.func(*call.args, **call.kw)
        self.assertEqual(len(self.h.fake.sent), 2048)
        self.h.reactor.advance(0)
        self.assertEqual(self.successResultOf(ping.done).received, 3000)

    def test_sequence_numbers(self) -> None:
        """The wire sequence numbers follow each other (modulo 65,536) under one identifier."""
        self.successResultOf(self.ping(300).done)
        seqs = self.h.seqs()
        self.assertEqual([(b - a) & 0xFFFF for a, b in itertools.pairwise(seqs)], [1] * 299)
        idents = {_fields(data)[0] for data, _ in self.h.fake.sent}
        self.assertEqual(idents, {self.h.socket.table.ident})

    def test_request_checksums(self) -> None:
        """Every request built from the template sums to 0, whatever the payload size."""
        for size in (0, 1, 2, 7, 8, 9, 55, 56, 57, 1001):
            for pattern in (b"", b"\xff", b"\x12\x34\x56"):
                h = Harness()
                ping = h.client.ping(
                    US, count=20, interval=0.0, size=size, pattern=pattern, iterate=False
                )
                self.assertEqual(self.successResultOf(ping.done).received, 20, size)
                for data, _ in h.fake.sent:
                    self.assertEqual(len(data), 8 + size)
                    self.assertEqual(data[:2], b"\x08\x00")
                    self.assertEqual(checksum(data), 0, (size, pattern))

    def test_cookies_differ(self) -> None:
        """Each probe carries a fresh cookie: no two payloads of a run are alike."""
        self.successResultOf(self.ping(200).done)
        payloads = {data[8:] for data, _ in self.h.fake.sent}
        self.assertEqual(len(payloads), 200)

    def test_waits_for_the_reply_then_10_ms(self) -> None:
        """No reply: the next probe goes 10 ms later, not before; each is lost."""
        self.h.fake.answer = lambda request, target: []
        ping = self.ping(3)
        self.assertEqual(len(self.h.fake.sent), 1)
        self.h.reactor.advance(0.005)
        self.assertEqual(len(self.h.fake.sent), 1)
        self.h.reactor.advance(0.005)
        self.assertEqual(len(self.h.fake.sent), 2)
        self.h.reactor.advance(0.01)
        self.assertEqual(len(self.h.fake.sent), 3)
        self.h.reactor.advance(2)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.transmitted, summary.received), (3, 0))
        self.assertEqual(self.kinds(), [("timeout", 1), ("timeout", 2), ("timeout", 3)])

    def test_late_reply_resumes(self) -> None:
        """A reply the reactor reads after the loop stopped waiting sends the next probe at once."""
        fake = self.h.fake
        held: list[bytes] = []
        fake.answer = lambda request, target: (held.append(request), [])[1]
        ping = self.ping(2)
        self.assertEqual(len(fake.sent), 1)
        self.h.reactor.advance(0.004)
        fake.inbox.append(_reply(held[0]))
        fake.answer = FakeSocket.echo
        self.h.socket.doRead()
        self.assertEqual(len(fake.sent), 2)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.transmitted, summary.received), (2, 2))
        self.assertEqual(self.kinds(), [("reply", 1), ("reply", 2)])
        self.assertAlmostEqual(self.results[0].rtt or 0, 0.004)

    def _first_then_real(self, forge: Any) -> Any:
        """Each request is answered by ``forge(request)`` first, then by its real reply."""
        self.h.fake.answer = lambda request, target: [
            forge(request),
            *FakeSocket.echo(request, target),
        ]
        return self.successResultOf(self.ping(5).done)

    def test_forged_source(self) -> None:
        """A perfect reply from another address is not ours; the real one is credited."""
        summary = self._first_then_real(lambda r: _reply(r, source="127.0.0.9"))
        self.assertEqual((summary.received, summary.duplicates, summary.damaged), (5, 0, 0))
        self.assertEqual(self.kinds(), [("reply", n) for n in range(1, 6)])
        self.assertEqual(self.h.socket.table.not_ours, 5)

    def test_wrong_cookie(self) -> None:
        """A reply with our identifier and sequence number but another cookie is not ours."""
        summary = self._first_then_real(lambda r: _reply(r, payload=bytes(len(r) - 8)))
        self.assertEqual((summary.received, summary.duplicates), (5, 0))
        self.assertEqual(self.h.socket.table.not_ours, 5)

    def test_wrong_identifier(self) -> None:
        """Another pinger's reply (another identifier) is not ours."""
        summary = self._first_then_real(lambda r: _reply(r, ident=_fields(r)[0] ^ 1))
        self.assertEqual((summary.received, summary.duplicates), (5, 0))
        self.assertEqual(self.h.socket.table.not_ours, 5)

    def test_next_sequence_number(self) -> None:
        """A reply carrying the sequence number of a probe not sent yet is never credited."""
        summary = self._first_then_real(lambda r: _reply(r, seq=(_fields(r)[1] + 1) & 0xFFFF))
        self.assertEqual((summary.received, summary.duplicates), (5, 0))
        self.assertEqual(self.kinds(), [("reply", n) for n in range(1, 6)])

    def test_bad_checksum(self) -> None:
        """A damaged copy of our reply is told as damaged, never credited; the good one is."""
        summary = self._first_then_real(lambda r: _reply(r, good=False))
        self.assertEqual((summary.received, summary.damaged, summary.duplicates), (5, 5, 0))
        self.assertEqual(
            self.kinds(), [k for n in range(1, 6) for k in (("damaged", n), ("reply", n))]
        )

    def test_only_damaged(self) -> None:
        """Replies that are all damaged: nothing received, every probe times out."""
        self.h.fake.answer = lambda request, target: [_reply(request, good=False)]
        ping = self.ping(3)
        self.h.reactor.advance(0.01)
        self.h.reactor.advance(0.01)
        self.h.reactor.advance(2)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.transmitted, summary.received, summary.damaged), (3, 0, 3))

    def test_duplicates(self) -> None:
        """Every reply twice: each probe credited once, each copy a duplicate of its own probe."""
        self.h.fake.answer = lambda request, target: FakeSocket.echo(request, target) * 2
        summary = self.successResultOf(self.ping(4).done)
        self.assertEqual((summary.transmitted, summary.received, summary.duplicates), (4, 4, 3))
        self.assertEqual(
            self.kinds(),
            [k for n in (1, 2, 3) for k in (("reply", n), ("duplicate", n))] + [("reply", 4)],
        )

    def test_earlier_reply_copy(self) -> None:
        """A copy of the previous probe's reply read before the current one: a duplicate of it."""
        previous: list[bytes] = []

        def answer(request: bytes, target: str) -> list[bytes]:
            replies = [_reply(previous[-1])] if previous else []
            previous.append(request)
            return replies + FakeSocket.echo(request, target)

        self.h.fake.answer = answer
        summary = self.successResultOf(self.ping(3).done)
        self.assertEqual((summary.received, summary.duplicates), (3, 2))
        self.assertEqual(
            self.kinds(),
            [("reply", 1), ("duplicate", 1), ("reply", 2), ("duplicate", 2), ("reply", 3)],
        )

    def test_deadline_counts_replies(self) -> None:
        """With -w and -c, probes go on until COUNT replies came (lost ones do not count)."""
        sent = []

        def answer(request: bytes, target: str) -> list[bytes]:
            sent.append(request)
            return [] if len(sent) % 2 else FakeSocket.echo(request, target)

        self.h.fake.answer = answer
        ping = self.ping(3, deadline=5.0)
        for _ in range(3):
            self.h.reactor.advance(0.01)
        self.assertEqual(len(sent), 6)
        self.h.reactor.advance(2)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.transmitted, summary.received), (6, 3))

    def test_no_async_iteration(self) -> None:
        """A ping started with iterate=False refuses ``async for``: nothing is kept for it."""
        ping = self.ping(1)
        self.assertRaises(TypeError, ping.__aiter__)

    def test_iterating_ping_unchanged(self) -> None:
        """With iterate left True, -i 0 keeps its bounded burst per turn of the reactor."""
        ping = self.h.client.ping(US, count=1000, interval=0.0)
        self.assertEqual(len(self.h.fake.sent), 256)
        for _ in range(3):
            self.h.reactor.advance(0)
        self.assertEqual(self.successResultOf(ping.done).received, 1000)


class RapidLiveTests(TestCase):
    """The back-to-back path on a real raw socket, to 127.0.0.1."""

    skip = raw_skip_reason()

    def test_loopback(self) -> Deferred[None]:
        """2,000 probes back to back: every one answered once, in order, no duplicate."""

        async def run() -> None:
            client = PingClient(reactor, "raw")
            self.addCleanup(client.close)
            results: list[ProbeResult] = []
            running = client.ping(
                "127.0.0.1", count=2000, interval=0.0, iterate=False, on_result=results.append
            )
            summary = await running.done
            self.assertEqual(
                (summary.transmitted, summary.received, summary.duplicates, summary.damaged),
                (2000, 2000, 0, 0),
            )
            self.assertEqual([r.seq for r in results], list(range(1, 2001)))
            self.assertEqual({r.kind for r in results}, {"reply"})

        return ensureDeferred(run())
