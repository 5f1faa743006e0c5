"""
The C load generator of the benchmarks (``benchmarks/_loadgen.c``): build it,
run it, read its figures.

A load generator in Python costs more CPU per request than the servers it
measures, and on a small machine it shares their cores, so it shapes the
figures it is meant to take. The C one drives the same loads (TCP ping-pong
echo, TCP streaming, TCP daytime, UDP echo and daytime) from one epoll loop.

:func:`build` compiles it with ``cc -O2`` into a cache directory
(``$NETPROTO_BENCH_CACHE``, else ``$XDG_CACHE_HOME/netproto-bench``, else
``~/.cache/netproto-bench``), once per version of the source: the binary's
name carries the source's hash, so an edited source is rebuilt. :func:`run`
runs one load against a loopback port and returns a :class:`Result`; it can
call back at the start and the end of the timed window, for a caller that
samples the server's CPU at those moments. :func:`choose` resolves the
benchmarks' ``--loadgen c|python`` option: ``c`` when it builds, else the
Python generator of ``bench_services.py`` with a note on stderr saying so.

Only literal loopback targets (127.0.0.0/8, ``::1``) are accepted, here and
again in the C program.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().with_name("_loadgen.c")
"""The C source of the generator."""

CFLAGS = ("-O2", "-Wall")
"""Compiler flags (part of the cache key)."""

MODES = ("echo", "stream", "daytime", "udp")
"""The loads the generator knows."""


class LoadgenError(RuntimeError):
    """The generator could not be built, or a run failed."""


class NoCompilerError(LoadgenError):
    """No C compiler on the PATH (``$CC``, else ``cc``)."""


@dataclass(frozen=True)
class Result:
    """The figures of one timed window, as the generator printed them."""

    mode: str
    requests: int
    bytes: int
    seconds: float
    cpu: float
    user: float
    system: float
    errors: int
    resends: int
    wakeups: int
    events: int
    voluntary_switches: int
    involuntary_switches: int

    @property
    def rate(self) -> float:
        """Requests per second of the window."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_request(self) -> float:
        """The generator's own CPU seconds per request (0 without requests)."""
        return self.cpu / self.requests if self.requests else 0.0


def compiler() -> str | None:
    """The C compiler to use (``$CC`` or ``cc``), or None when there is none."""
    return shutil.which(os.environ.get("CC", "cc"))


def cache_dir() -> Path:
    """Where built generators are kept."""
    if os.environ.get("NETPROTO_BENCH_CACHE"):
        return Path(os.environ["NETPROTO_BENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "netproto-bench"


def build(cache: Path | None = None) -> Path:
    """
    The generator's binary, compiled now if this version of the source has
    not been; raise :class:`NoCompilerError` without a compiler, :class:`LoadgenError`
    when compiling fails.
    """
    cc = compiler()
    if cc is None:
        raise NoCompilerError("no C compiler (cc) on the PATH")
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + b"\0" + " ".join(CFLAGS).encode()).hexdigest()[:16]
    folder = cache or cache_dir()
    binary = folder / f"_loadgen-{key}"
    if binary.exists():
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    # Built beside its final name, then renamed: two benchmarks building at
    # once never run a half-written binary.
    fd, partial = tempfile.mkstemp(prefix=".loadgen-", dir=folder)
    os.close(fd)
    try:
        done = subprocess.run(
            [cc, *CFLAGS, "-o", partial, str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise LoadgenError(f"cc failed on {SOURCE.name}:\n{done.stderr}")
        os.chmod(partial, 0o755)
        os.replace(partial, binary)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return binary


def choose(requested: str) -> str:
    """
    Resolve ``--loadgen``: ``"c"`` when asked for and it builds, else
    ``"python"``, with a note on stderr when the C generator was wanted but
    cannot be built.
    """
    if requested == "python":
        return "python"
    try:
        build()
    except LoadgenError as e:
        print(
            f"note: the C load generator is not available ({str(e).splitlines()[0]}): "
            "using the Python one, which costs more CPU per request than the servers "
            "and shares their cores, so rates and CPU shares are distorted",
            file=sys.stderr,
        )
        return "python"
    return "c"


def add_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--loadgen c|python`` to a benchmark's parser."""
    parser.add_argument(
        "--loadgen",
        choices=("c", "python"),
        default="c",
        help="load generator: c (benchmarks/_loadgen.c, built with cc -O2; the default "
        "when it builds) or python (the epoll generator of bench_services.py)",
    )


def check_target(host: str) -> None:
    """Raise ValueError unless *host* is a literal loopback address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an address literal (names are not resolved)") from None
    if not address.is_loopback:
        raise ValueError(f"{host} is not a loopback address: the load generator refuses it")


def run(
    mode: str,
    port: int,
    *,
    host: str = "127.0.0.1",
    duration: float = 2.0,
    warmup: float = 0.5,
    setup: float = 10.0,
    conns: int | None = None,
    size: int | None = None,
    parallel: int | None = None,
    sockets: int | None = None,
    window: int | None = None,
    timeout_ms: int | None = None,
    sources: int | None = None,
    cpu: int | None = None,
    on_mark: Callable[[str], None] | None = None,
    binary: Path | None = None,
) -> Result:
    """
    Run the generator in *mode* against *host*:*port* for a window of
    *duration* seconds after *warmup*; return its figures. *on_mark* is
    called with ``"start"`` and ``"end"`` as the window opens and closes.
    *cpu* pins the generator to that CPU. Raise :class:`LoadgenError` when it
    fails or overruns, ValueError for a target that is not loopback.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    check_target(host)
    argv = [
        str(binary or build()),
        mode,
        host,
        str(port),
        f"--duration={duration}",
        f"--warmup={warmup}",
        f"--setup={setup}",
    ]
    for name, value in (
        ("conns", conns),
        ("size", size),
        ("parallel", parallel),
        ("sockets", sockets),
        ("window", window),
        ("timeout-ms", timeout_ms),
        ("sources", sources),
    ):
        if value is not None:
            argv.append(f"--{name}={value}")
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if cpu is not None and cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(process.pid, {cpu})
    # Its own alarm ends it 10 s late; this one, if even that failed.
    limit = threading.Timer(warmup + setup + duration + 20.0, process.kill)
    limit.start()
    try:
        assert process.stdout is not None and process.stderr is not None
        last = ""
        for line in process.stdout:
            line = line.strip()
            if line in ("start", "end"):
                if on_mark is not None:
                    on_mark(line)
            elif line:
                last = line
        error = process.stderr.read()
        code = process.wait()
    finally:
        limit.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    if code != 0 or not last:
        raise LoadgenError(f"_loadgen {mode} exited {code}: {error.strip()}")
    return Result(**json.loads(last))
