"""
Benchmark netproto.util: the RFC 1071 checksum and address parsing.

Prints throughput for each contender and its ratio to the textbook
word-by-word loop (checksum) or to the standard library (parsing), measured
in one run with the contenders interleaved (A B C A B C ...) so that a noisy,
shared machine slows them alike. The best of the rounds is reported.

    python benchmarks/bench_util.py [--size BYTES] [--rounds N]

Peers: the textbook word loop in Python, ``array``-based summing (a well-known
faster pure-Python approach), and, when ``gcc`` is on the PATH, the same loop
in C called through ctypes.
"""

from __future__ import annotations

import argparse
import ctypes
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable

from netproto.util import checksum, parse_ip

Contender = tuple[str, Callable[[], object]]


def word_loop(data: bytes) -> int:
    """The textbook checksum, word by word, as RFC 1071's sample code does it."""
    total = 0
    length = len(data)
    i = 0
    while length > 1:
        total += data[i] * 256 + data[i + 1]
        i += 2
        length -= 2
    if length == 1:
        total += data[i] * 256
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def array_sum(data: bytes) -> int:
    """Sum 16-bit words with ``array('H')`` (native order, swapped on little-endian hosts)."""
    if len(data) & 1:
        data += b"\0"
    words = array("H", data)
    if sys.byteorder == "little":
        words.byteswap()
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


_C_SOURCE = r"""
#include <stddef.h>
#include <stdint.h>
unsigned int csum(const unsigned char *p, size_t n) {
    uint64_t s = 0;
    size_t i;
    for (i = 0; i + 1 < n; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1) s += (uint32_t)p[n - 1] << 8;
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (unsigned int)(~s & 0xffff);
}
"""


def c_loop() -> Callable[[bytes], int] | None:
    """The same loop compiled with ``gcc -O2``, or None when gcc is missing."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    folder = tempfile.mkdtemp(prefix="netproto-bench-")
    source, library = os.path.join(folder, "csum.c"), os.path.join(folder, "csum.so")
    with open(source, "w") as f:
        f.write(_C_SOURCE)
    subprocess.run([gcc, "-O2", "-shared", "-fPIC", "-o", library, source], check=True)
    function = ctypes.CDLL(library).csum
    function.restype = ctypes.c_uint
    function.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lambda data: int(function(data, len(data)))


def best_seconds(contenders: list[Contender], rounds: int, repeat: int) -> dict[str, float]:
    """Per contender, the best time of one call over *rounds* interleaved rounds."""
    best = {name: float("inf") for name, _ in contenders}
    for _ in range(rounds):
        for name, call in contenders:
            start = time.perf_counter()
            for _ in range(repeat):
                call()
            best[name] = min(best[name], (time.perf_counter() - start) / repeat)
    return best


def bench_checksum(size: int, rounds: int) -> None:
    data = os.urandom(size)
    expected = word_loop(data)
    functions: dict[str, Callable[[bytes], int]] = {
        "word loop (Python)": word_loop,
        "array('H') sum": array_sum,
        "netproto.util.checksum": checksum,
    }
    compiled = c_loop()
    if compiled is not None:
        functions["C loop (gcc -O2, ctypes)"] = compiled
    for name, function in functions.items():
        assert function(data) == expected, f"{name} disagrees"
    contenders: list[Contender] = [
        (name, lambda f=function: f(data)) for name, function in functions.items()
    ]
    # The word loop is slow: one call per round for it, many for the others.
    slow = best_seconds(contenders[:1], rounds, 1)
    rest = best_seconds(contenders[1:], rounds, 20)
    times = {**slow, **rest}
    base = times["word loop (Python)"]
    print(f"checksum of {size:,} random bytes (best of {rounds} interleaved rounds)")
    print(f"  {'contender':28} {'time':>10} {'MB/s':>10} {'x loop':>9}")
    for name, seconds in times.items():
        print(
            f"  {name:28} {seconds * 1e3:8.3f}ms {size / seconds / 1e6:10.1f} {base / seconds:9.1f}"
        )
    if compiled is None:
        print("  (gcc not found: the C loop was not measured)")


def bench_parse(rounds: int) -> None:
    samples = [
        "192.168.1.3",
        "127.0.0.1",
        "::1",
        "fda3:97c:1eb:fff0:5444:903a:33f0:3a6b",
        "::ffff:127.1.2.3",
        "2001:db8::8a2e:370:7334",
    ]

    def run_parse() -> None:
        for text in samples:
            parse_ip(text)

    def run_stdlib() -> None:
        for text in samples:
            ipaddress.ip_address(text)

    def run_pton() -> None:
        for text in samples:
            socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)

    contenders: list[Contender] = [
        ("ipaddress.ip_address", run_stdlib),
        ("netproto.util.parse_ip", run_parse),
        ("socket.inet_pton (no object)", run_pton),
    ]
    times = best_seconds(contenders, rounds, 2000)
    base = times["ipaddress.ip_address"]
    per = len(samples)
    print(f"\nparsing {per} mixed addresses (best of {rounds} interleaved rounds)")
    print(f"  {'contender':28} {'per address':>12} {'x stdlib':>9}")
    for name, seconds in times.items():
        print(f"  {name:28} {seconds / per * 1e9:10.0f}ns {base / seconds:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--size", type=int, default=1 << 20, help="bytes to checksum (1 MiB)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args()
    bench_checksum(args.size, args.rounds)
    bench_parse(args.rounds)


if __name__ == "__main__":
    main()
