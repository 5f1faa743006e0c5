"""
The pure pieces of a stateless sweep: :class:`netproto.ping.Permutation`
(every index once, shards disjoint and complete, the same order for the same
seed), :class:`netproto.ping.TargetSpace` (with :mod:`ipaddress` as the
oracle) and the probes' proof (:mod:`netproto.ping._stamp`).
"""

from __future__ import annotations

import ipaddress
import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from netproto.ping import Permutation, TargetSpace, key_text, read_exclude_file
from netproto.ping._permutation import is_prime, next_prime
from netproto.ping._stamp import Stamper
from netproto.util import AddressError, checksum


class PermutationTests(SynchronousTestCase):
    """A full-period walk of the multiplicative group modulo a prime above N."""

    @given(st.integers(0, 3000), st.integers(0, 2**64), st.integers(1, 9))
    @settings(max_examples=60, deadline=None)
    def test_shards_cover_once(self, n: int, seed: int, shards: int) -> None:
        """The shards of one seed visit every index of [0, n) exactly once between them."""
        perm = Permutation(n, seed)
        seen = []
        for k in range(shards):
            seen += perm.walk(k, shards)
        self.assertEqual(sorted(seen), list(range(n)))

    def test_seeded(self) -> None:
        """One seed, one order; another seed, another order."""
        self.assertEqual(Permutation(1000, 5).walk(), Permutation(1000, 5).walk())
        self.assertNotEqual(Permutation(1000, 5).walk(), Permutation(1000, 6).walk())

    def test_resume_position(self) -> None:
        """Walking from position s gives the tail of the walk from 0."""
        perm = Permutation(500, 9)
        whole = []
        x = perm.element(1, 3, 0)
        for _ in range(perm.positions(1, 3)):
            whole.append(x)
            x = x * perm.stride(3) % perm.prime
        self.assertEqual(perm.element(1, 3, 40), whole[40])

    def test_large(self) -> None:
        """A space of 2**32 (all of IPv4) or 2**64 gets its group at once."""
        for n in (2**32, 2**64):
            perm = Permutation(n, 1)
            self.assertGreater(perm.prime, n)
            self.assertEqual(pow(perm.generator, perm.prime - 1, perm.prime), 1)

    @given(st.integers(0, 10**6))
    @settings(max_examples=200)
    def test_primes(self, n: int) -> None:
        """is_prime agrees with trial division; next_prime is the next one."""
        naive = n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))
        self.assertEqual(is_prime(n), naive)
        p = next_prime(n)
        self.assertTrue(is_prime(p) and p >= n)


class TargetSpaceTests(SynchronousTestCase):
    """Ranges, indexed without being expanded."""

    @given(st.integers(0, 2**32 - 1), st.integers(23, 32), st.integers(119, 128))
    @settings(max_examples=30, deadline=None)
    def test_cidr_like_ipaddress(self, value: int, prefix4: int, prefix6: int) -> None:
        """A CIDR's targets are ipaddress's hosts(), in order, each mapped back to its index."""
        net4 = ipaddress.ip_network((value, prefix4), strict=False)
        net6 = ipaddress.ip_network((value << 96, prefix6), strict=False)
        for net in (net4, net6):
            space = TargetSpace([str(net)])
            hosts = [str(a) for a in net.hosts()]
            self.assertEqual(len(space), len(hosts))
            self.assertEqual([space[i] for i in range(len(space))], hosts)
            for i in (0, len(space) // 2, len(space) - 1):
                if hosts:
                    self.assertEqual(space.index_of(space.key(i)), i)

    @given(
        st.one_of(
            st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v))),
            st.lists(st.integers(0, 300).map(str), min_size=1, max_size=5).map(".".join),
            st.lists(st.sampled_from("0123456789. x-:/"), max_size=16).map("".join),
        )
    )
    @settings(max_examples=200, deadline=None)
    def test_literals_like_ipaddress(self, text: str) -> None:
        """A single IPv4 literal is taken exactly when ipaddress takes it, as that address."""
        try:
            expected = int(ipaddress.IPv4Address(text))
        except ValueError:
            expected = None
        try:
            space = TargetSpace([text], version=4)
        except AddressError:
            got = None
        else:
            got = space.key(0) if len(space) == 1 and "/" not in text and "-" not in text else -1
        if expected is not None:
            self.assertEqual(got, expected)
        elif "/" not in text and "-" not in text:
            self.assertIsNone(got)

    def test_overlaps_ranges_and_exclusions(self) -> None:
        """Overlaps counted once; A-B ranges; excluded CIDRs removed whole."""
        space = TargetSpace(
            ["127.0.0.0/24", "127.0.0.5-127.0.1.3", "::1", "127.0.0.7"],
            exclude=["127.0.0.128/25", "::1"],
        )
        got = [space[i] for i in range(len(space))]
        expected = [f"127.0.0.{i}" for i in range(1, 128)] + [f"127.0.1.{i}" for i in range(4)]
        self.assertEqual(got, expected)
        self.assertIsNone(space.index_of(space.key(0) + 200))
        self.assertEqual(space.versions, {4})

    def test_refused(self) -> None:
        """Names, reversed or mixed ranges and bad CIDRs are refused, naming the text."""
        for text in ("localhost", "127.0.0.9-127.0.0.1", "127.0.0.1-::1", "127.0.0.0/33"):
            with self.assertRaises(AddressError) as caught:
                TargetSpace([text])
            self.assertIn(text, str(caught.exception))
        self.assertRaises(AddressError, TargetSpace, ["::1"], 4)

    def test_exclude_file(self) -> None:
        """One range a line, comments and blank lines skipped; a missing file named."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("# loopback holes\n127.0.0.0/30  # the first\n\n127.0.0.9\n")
        self.assertEqual(read_exclude_file(path), ["127.0.0.0/30", "127.0.0.9"])
        with self.assertRaises(AddressError) as caught:
            read_exclude_file(path + ".missing")
        self.assertIn(".missing", str(caught.exception))

    def test_key_text(self) -> None:
        """Keys print as inet_ntop prints the address."""
        space = TargetSpace(["::ffff:0:0/127", "10.0.0.1"])
        self.assertEqual(
            [key_text(space.key(i)) for i in range(3)],
            [
                "10.0.0.1",
                "::ffff:0.0.0.0",
                "::ffff:0.0.0.1",
            ],
        )


class StampTests(SynchronousTestCase):
    """The proof in every sweep probe."""

    @given(st.binary(min_size=4, max_size=4), st.integers(0, 2**32 - 1), st.floats(0, 1e9))
    @settings(max_examples=100)
    def test_request_checksum_and_proof(self, packed: bytes, number: int, sent: float) -> None:
        """The incremental checksum is RFC 1071's; the proof verifies for its target only."""
        stamper = Stamper(4, 0x1234, 56, key=os.urandom(32))
        data = stamper.request(packed, number, sent)
        self.assertEqual(checksum(data), 0)
        self.assertEqual(checksum(data[:2] + b"\0\0" + data[4:]), int.from_bytes(data[2:4], "big"))
        seq = int.from_bytes(data[6:8], "big")
        self.assertEqual(stamper.verify(packed, 0x1234, seq, data[8:]), (number, sent))
        other = bytes([packed[0] ^ 1]) + packed[1:]
        self.assertIsNone(stamper.verify(other, 0x1234, seq, data[8:]))
        self.assertIsNone(stamper.verify(packed, 0x1235, seq, data[8:]))
        self.assertIsNone(stamper.verify(packed, 0x1234, seq ^ 1, data[8:]))

    def test_keys_differ(self) -> None:
        """Another key (another sweep) does not verify this one's probes."""
        one, two = Stamper(4, 1, 56), Stamper(4, 1, 56)
        data = one.request(b"\x7f\0\0\1", 0, 1.0)
        seq = int.from_bytes(data[6:8], "big")
        self.assertIsNone(two.verify(b"\x7f\0\0\1", 1, seq, data[8:]))
