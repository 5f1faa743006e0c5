"""
The benchmarks' C load generator (``benchmarks/_loadgen.c`` through
``benchmarks/loadgen.py``): it builds (and rebuilds when its source
changes), counts exactly what a loopback server answered within its timed
window, refuses every target that is not a literal loopback address, and
ends in time against a server that never answers. The servers are small
Twisted ones in this process, on 127.0.0.1 port 0, that answer only once the
generator announces its window, and then a known number of requests.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, reactor, threads
from twisted.trial.unittest import SynchronousTestCase, TestCase

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import loadgen

_NO_CC = None if loadgen.compiler() else "no C compiler (cc) on the PATH"


class _Gate:
    """Holds a server's answers until the generator's window opens, then allows *budget*."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.open = False
        self.waiting: list[Any] = []
        self.lost: list[defer.Deferred[None]] = []

    def mark(self, what: str) -> None:
        """Called (in the reactor thread) with the generator's start and end marks."""
        if what == "start":
            self.open = True
            waiting, self.waiting = self.waiting, []
            for answer in waiting:
                self.take(answer)

    def take(self, answer: Any) -> None:
        """Answer now if the gate is open and the budget allows; else hold it."""
        if not self.open:
            self.waiting.append(answer)
        elif self.budget > 0:
            self.budget -= 1
            answer()


class _Held(protocol.Protocol):
    """A TCP connection whose end the test awaits."""

    def __init__(self, gate: _Gate) -> None:
        self.gate = gate
        self.done: defer.Deferred[None] = defer.Deferred()
        gate.lost.append(self.done)

    def connectionLost(self, reason: Any = None) -> None:
        self.done.callback(None)


class _Daytime(_Held):
    """One line then close, once the gate lets this connection through."""

    def connectionMade(self) -> None:
        self.gate.take(self._answer)

    def _answer(self) -> None:
        self.transport.write(b"Wed Dec  2 13:00:00 2026\r\n")
        self.transport.loseConnection()


class _Echo(_Held):
    """Echoes each connection's first message at once (the generator's set-up), then
    one message of SIZE bytes per unit of the gate's budget."""

    size = 64

    def connectionMade(self) -> None:
        self.buffer = b""
        self.first = True

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= self.size:
            message, self.buffer = self.buffer[: self.size], self.buffer[self.size :]
            if self.first:
                self.first = False
                self.transport.write(message)
            else:
                self.gate.take(lambda m=message: self.transport.write(m))


class _UDPEcho(protocol.DatagramProtocol):
    """Echoes datagrams once the gate is open, up to its budget; drops the others."""

    def __init__(self, gate: _Gate) -> None:
        self.gate = gate

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        if self.gate.open:
            self.gate.take(lambda: self.transport.write(data, addr))


class _Factory(protocol.Factory):
    noisy = False

    def __init__(self, kind: type[_Held], gate: _Gate) -> None:
        self.kind = kind
        self.gate = gate

    def buildProtocol(self, addr: Any) -> _Held:
        return self.kind(self.gate)


class CountTests(TestCase):
    """The generator counts the answers a server gave within its window, no more."""

    skip = _NO_CC
    timeout = 60

    def _tcp(self, kind: type[_Held], gate: _Gate) -> int:
        port = reactor.listenTCP(0, _Factory(kind, gate), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        number: int = port.getHost().port
        return number

    def _load(self, gate: _Gate, **kwargs: Any) -> defer.Deferred[loadgen.Result]:
        def mark(what: str) -> None:
            reactor.callFromThread(gate.mark, what)

        return threads.deferToThread(loadgen.run, on_mark=mark, **kwargs)

    @defer.inlineCallbacks
    def test_daytime_counts_connections_answered(self) -> Any:
        """Against a daytime server that answers 37 connections in the window, the
        generator reports 37 requests and their bytes, 8 connections at a time."""
        gate = _Gate(37)
        port = self._tcp(_Daytime, gate)
        result = yield self._load(
            gate, mode="daytime", port=port, duration=1.0, warmup=0.2, parallel=8
        )
        yield defer.DeferredList(gate.lost)
        self.assertEqual(result.requests, 37)
        self.assertEqual(result.bytes, 37 * 26)
        self.assertEqual(result.errors, 0)
        self.assertGreater(result.seconds, 0.9)

    @defer.inlineCallbacks
    def test_echo_counts_exchanges(self) -> Any:
        """Against an echo server that answers 150 messages in the window (after each
        connection's set-up exchange), the generator reports 150 exchanges."""
        gate = _Gate(150)
        port = self._tcp(_Echo, gate)
        result = yield self._load(
            gate, mode="echo", port=port, duration=1.0, warmup=0.2, conns=5, size=_Echo.size
        )
        yield defer.DeferredList(gate.lost)
        self.assertEqual(result.requests, 150)
        self.assertEqual(result.bytes, 150 * _Echo.size)

    @defer.inlineCallbacks
    def test_udp_counts_answers_and_resends(self) -> Any:
        """Against a UDP echo server that answers 300 datagrams in the window and drops
        the rest, the generator reports 300 answers, and resends when its datagrams
        are lost (it does not stall)."""
        gate = _Gate(300)
        udp = reactor.listenUDP(0, _UDPEcho(gate), interface="127.0.0.1")
        self.addCleanup(udp.stopListening)
        result = yield self._load(
            gate,
            mode="udp",
            port=udp.getHost().port,
            duration=1.0,
            warmup=0.2,
            sockets=2,
            window=4,
            size=16,
            timeout_ms=20,
            sources=2,
        )
        self.assertEqual(result.requests, 300)
        self.assertEqual(result.bytes, 300 * 16)
        self.assertGreater(result.resends, 0)

    @defer.inlineCallbacks
    def test_ends_in_time(self) -> Any:
        """Against a server that never answers, a 1 s window after 0.2 s of warm-up
        ends within 3 s with nothing counted."""
        gate = _Gate(0)
        port = self._tcp(_Daytime, gate)
        began = time.monotonic()
        result = yield self._load(
            gate, mode="daytime", port=port, duration=1.0, warmup=0.2, parallel=4
        )
        yield defer.DeferredList(gate.lost)
        self.assertLess(time.monotonic() - began, 3.0)
        self.assertEqual(result.requests, 0)

    @defer.inlineCallbacks
    def test_echo_setup_deadline(self) -> Any:
        """Echo connections that are never answered end the run once the set-up time
        is over (exit 1, a LoadgenError), not at the alarm."""
        gate = _Gate(0)
        gate.open = True  # nothing waits for the window: the budget is 0 throughout

        class Silent(_Held):
            pass

        port = self._tcp(Silent, gate)
        began = time.monotonic()
        with self.assertRaises(loadgen.LoadgenError):
            yield threads.deferToThread(
                loadgen.run, "echo", port, duration=1.0, warmup=0.2, setup=1.0, conns=3
            )
        yield defer.DeferredList(gate.lost)
        self.assertLess(time.monotonic() - began, 3.0)


class BuildTests(SynchronousTestCase):
    """The binary is built once per version of the source, into the cache directory."""

    skip = _NO_CC

    def test_builds_and_caches(self) -> None:
        """A second build of the same source is the same file, not rebuilt."""
        cache = Path(self.mktemp())
        binary = loadgen.build(cache)
        self.assertTrue(os.access(binary, os.X_OK))
        self.assertEqual(binary.parent, cache)
        stamp = binary.stat().st_mtime_ns
        self.assertEqual(loadgen.build(cache), binary)
        self.assertEqual(binary.stat().st_mtime_ns, stamp)

    def test_rebuilds_when_the_source_changes(self) -> None:
        """An edited source gets a binary of its own."""
        cache = Path(self.mktemp())
        first = loadgen.build(cache)
        edited = Path(self.mktemp() + ".c")
        edited.write_bytes(loadgen.SOURCE.read_bytes() + b"\n/* edited */\n")
        self.patch(loadgen, "SOURCE", edited)
        second = loadgen.build(cache)
        self.assertNotEqual(first, second)
        self.assertTrue(os.access(second, os.X_OK))

    def test_broken_source(self) -> None:
        """A source that does not compile raises LoadgenError with the compiler's words."""
        broken = Path(self.mktemp() + ".c")
        broken.write_text("int main(void) { return nope; }\n")
        self.patch(loadgen, "SOURCE", broken)
        with self.assertRaises(loadgen.LoadgenError) as caught:
            loadgen.build(Path(self.mktemp()))
        self.assertIn("nope", str(caught.exception))


class FallbackTests(SynchronousTestCase):
    """Without a C compiler the benchmarks use the Python generator, and say so."""

    def test_no_compiler(self) -> None:
        """``--loadgen c`` without cc resolves to python, with a note on stderr."""
        self.patch(os, "environ", {**os.environ, "CC": "/nonexistent/cc"})
        self.patch(loadgen, "cache_dir", lambda: Path(self.mktemp()))
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        self.assertEqual(loadgen.choose("c"), "python")
        self.assertIn("C load generator is not available", err.getvalue())
        self.assertEqual(loadgen.choose("python"), "python")


class RefusalTests(SynchronousTestCase):
    """Only literal loopback targets: no name is resolved, no other address reached."""

    skip = _NO_CC

    targets = (
        "192.0.2.1",
        "10.0.0.1",
        "0.0.0.0",
        "::",
        "::2",
        "::ffff:10.0.0.1",
        "fe80::1",
        "localhost",
        "nonexistent.invalid",
        "300.1.1.1",
    )

    def test_binary_refuses(self) -> None:
        """The C program exits 2 for each target that is not a loopback literal."""
        binary = loadgen.build()
        for host in self.targets:
            done = subprocess.run(
                [str(binary), "udp", host, "7", "--duration=0.1", "--warmup=0"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            self.assertEqual(done.returncode, 2, host)
            self.assertIn("refused", done.stderr, host)
            self.assertEqual(done.stdout, "", host)

    def test_run_refuses(self) -> None:
        """loadgen.run raises ValueError before starting anything."""
        for host in self.targets:
            with self.assertRaises(ValueError):
                loadgen.run("udp", 7, host=host, duration=0.1, warmup=0)

    def test_loopback_accepted(self) -> None:
        """127.x.y.z and ::1 are accepted (against a socket of this test that never
        reads: nothing answers, and the run ends with its figures)."""
        for host, family in (
            ("127.0.0.1", socket.AF_INET),
            ("127.9.8.7", socket.AF_INET),
            ("::1", socket.AF_INET6),
        ):
            with socket.socket(family, socket.SOCK_DGRAM) as sink:
                sink.bind((host, 0))
                port = sink.getsockname()[1]
                result = loadgen.run("udp", port, host=host, duration=0.2, warmup=0, sockets=1)
            self.assertEqual(result.requests, 0)
            self.assertGreater(result.seconds, 0.15)
