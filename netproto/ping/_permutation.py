"""
A seeded, full-period pseudo-random permutation of ``[0, n)`` that needs no
memory: the multiplicative group modulo a prime ``p > n``, walked from a
random start by a random generator (zmap's construction).

Every element of ``1 .. p-1`` is ``start * g**j mod p`` for exactly one ``j``
in ``[0, p-1)``, so walking ``j`` visits each once; elements above *n* are
skipped. A shard ``k`` of ``m`` takes the positions ``j = k, k+m, k+2m, ...``:
the shards of one seed cover every index exactly once between them, and a
position in the walk is all it takes to resume.
"""

from __future__ import annotations

import hashlib
import math
import random

__all__ = ["Permutation", "is_prime", "next_prime"]

_WITNESSES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
"""Miller-Rabin bases that decide primality exactly below 3.3 * 10**24."""


def is_prime(n: int) -> bool:
    """Whether *n* is prime (exact for ``n < 3.3e24``, which covers every sweep)."""
    if n < 2:
        return False
    for p in _WITNESSES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in _WITNESSES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def next_prime(n: int) -> int:
    """The smallest prime at least *n*."""
    n = max(n, 2)
    while not is_prime(n):
        n += 1
    return n


def _rho(n: int, rng: random.Random) -> int:
    """A non-trivial factor of the composite *n* (Pollard's rho, Brent's variant)."""
    if n % 2 == 0:
        return 2
    while True:
        y, c, m = rng.randrange(1, n), rng.randrange(1, n), 128
        g = r = q = 1
        x = ys = y
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(m, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = math.gcd(q, n)
                k += m
            r *= 2
        if g == n:
            g = 1
            while g == 1:
                ys = (ys * ys + c) % n
                g = math.gcd(abs(x - ys), n)
        if g != n:
            return g


def _prime_factors(n: int, rng: random.Random) -> set[int]:
    """The distinct prime factors of *n*."""
    found: set[int] = set()
    for p in (2, 3, 5, 7, 11, 13):
        while n % p == 0:
            found.add(p)
            n //= p
    stack = [n] if n > 1 else []
    while stack:
        m = stack.pop()
        if is_prime(m):
            found.add(m)
            continue
        d = _rho(m, rng)
        stack += [d, m // d]
    return found


class Permutation:
    """
    A permutation of ``range(n)`` chosen by *seed* (any int): the same seed
    gives the same order, on any machine.
    """

    def __init__(self, n: int, seed: int) -> None:
        if n < 0:
            raise ValueError("n must be 0 or more")
        self.n = n
        self.seed = seed
        self.prime = p = next_prime(n + 1)
        """The group's modulus: a prime above *n*."""
        self.period = p - 1
        """Positions in one full walk (*n* of them yield an index)."""
        digest = hashlib.blake2b(f"{seed}:{n}".encode(), digest_size=16).digest()
        rng = random.Random(int.from_bytes(digest, "big"))
        if p <= 3:
            self.generator = p - 1
        else:
            factors = _prime_factors(p - 1, rng)
            while True:
                g = rng.randrange(2, p - 1)
                if all(pow(g, (p - 1) // q, p) != 1 for q in factors):
                    break
            self.generator = g
        self.start = rng.randrange(1, p)

    def positions(self, shard: int = 0, shards: int = 1) -> int:
        """How many positions of the walk shard *shard* (0-based) of *shards* takes."""
        return max(0, (self.period - shard + shards - 1) // shards)

    def element(self, shard: int, shards: int, step: int) -> int:
        """The group element at position *step* of shard *shard* of *shards*."""
        return self.start * pow(self.generator, shard + step * shards, self.prime) % self.prime

    def stride(self, shards: int) -> int:
        """What one step of a shard multiplies the element by."""
        return pow(self.generator, shards, self.prime)

    def walk(self, shard: int = 0, shards: int = 1, step: int = 0) -> list[int]:
        """
        The indexes of shard *shard* of *shards* from position *step* on, in
        order (a list: for tests and small sweeps; a sweep walks lazily).
        """
        out = []
        x = self.element(shard, shards, step)
        mul, p, n = self.stride(shards), self.prime, self.n
        for _ in range(self.positions(shard, shards) - step):
            if x <= n:
                out.append(x - 1)
            x = x * mul % p
        return out
