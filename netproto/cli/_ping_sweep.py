"""
Sweeps, for ``netproto ping`` with several hosts and for ``netproto fping``:
the targets gathered (operands, ``-f FILE``, ``-g``; a name that cannot be
resolved is reported and the sweep goes on), then probed in passes (``-r``
retries the unanswered with a timeout ``-B`` times longer each time), one
line or JSON object per target, fping's exit statuses.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from netproto.cli._command import finish, usage_error
from netproto.cli._output import CommandError, emit_json, error_record, format_ms, ms, printable

__all__ = [
    "SWEEP_ALIVE",
    "SWEEP_NOT_FOUND",
    "SWEEP_SYSTEM",
    "SWEEP_UNREACHABLE",
    "SWEEP_USAGE",
    "SweepRequest",
    "gather_targets",
    "read_target_file",
    "run_sweep",
]

SWEEP_ALIVE = 0
SWEEP_UNREACHABLE = 1
SWEEP_NOT_FOUND = 2
SWEEP_USAGE = 3
SWEEP_SYSTEM = 4
"""fping's exit statuses: all alive, some unreachable, a name not found, usage, a system call."""

PROGRESS_FROM = 256
"""Sweeps of at least this many targets show a progress line on a terminal."""
_PROGRESS_EVERY = 0.25


@dataclass
class SweepRequest:
    """What a sweep command asks for, whichever command's flags said it."""

    count: int = 1
    interval: float = 1.0
    """Seconds between the probes to one target (``-c`` rounds)."""
    timeout: float = 1.0
    """Seconds to wait for a reply (the first pass; retries wait longer)."""
    rate: float = 100.0
    """Probes a second at most, over all targets (0: no limit)."""
    size: int = 56
    retries: int = 0
    """Passes after the first over the targets not heard from (not with count > 1)."""
    backoff: float = 1.5
    """How much longer each retry waits than the pass before."""
    alive: bool = False
    """-a: list the alive targets, one address a line."""
    unreachable: bool = False
    """-u: list the unreachable targets, one address a line."""
    quiet: bool = False
    """No per-target lines (the -a and -u lists still print), no error lines."""
    style: str = "netproto"
    """``netproto`` lines (RTT, replies) and a summary line; or ``fping``'s own lines."""
    elapsed: bool = False
    """fping -e: the round trip after 'is alive'."""
    statistics: bool = False
    """fping -s: fping's statistics block on standard error at the end."""
    any: bool = False
    """Exit 0 when at least one target answered, not only when all did."""
    json: bool = False
    deadline: float | None = None
    labels: dict[str, list[str]] = field(default_factory=dict)
    """
    Address -> how each operand naming it was written (a name, a literal):
    one line each, as fping pings ``localhost`` and ``127.0.0.1`` apart.
    Addresses of ranges are shown as they are.
    """


def read_target_file(path: str, stdin: TextIO | None = None) -> list[str]:
    """
    Targets from *path* (``-`` for standard input), as fping reads them: the
    first word of each line; blank lines and ``#`` comments skipped.
    """
    try:
        if path == "-":
            text = (stdin or sys.stdin).read()
        else:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
    except OSError as e:
        raise usage_error(f"-f {printable(path)}: {e.strerror or e}") from None
    targets = []
    for line in text.splitlines():
        words = line.partition("#")[0].split()
        if words:
            targets.append(words[0])
    return targets


def generated(operands: list[str], version: int | None) -> list[str]:
    """
    ``-g``: one CIDR range (its hosts, as fping: without the network and
    broadcast addresses), or START END, every address from START to END.
    """
    from netproto.ping import expand_targets
    from netproto.util import AddressError, parse_ip

    try:
        if len(operands) == 1 and "/" in operands[0]:
            return list(expand_targets(operands, version))
        if len(operands) == 2:
            start, end = (parse_ip(text) for text in operands)
            if start.version != end.version or int(end) < int(start):
                raise AddressError(f"{operands[0]} to {operands[1]} is not a range")
            if int(end) - int(start) >= 1 << 24:
                raise AddressError("more than 16777216 targets")
            first = int(start)
            kind = ipaddress.IPv4Address if start.version == 4 else ipaddress.IPv6Address
            return list(
                expand_targets([str(kind(first + i)) for i in range(int(end) - first + 1)], version)
            )
    except AddressError as e:
        raise usage_error(f"-g {printable(' '.join(operands))}: {e}") from None
    raise usage_error("-g takes one CIDR range, or a START and an END address")


async def gather_targets(
    reactor: Any, texts: Iterable[str], version: int | None, request: SweepRequest
) -> tuple[list[str], list[tuple[str, Exception]]]:
    """
    The addresses of *texts* (literals and CIDR ranges as they are, names
    resolved one by one) and the names that failed, each with its error.
    A malformed literal or range is a usage error.
    """
    from netproto.lookup import Lookup, NameLookupError
    from netproto.ping import expand_targets
    from netproto.util import AddressError, parse_ip

    literals: list[str] = []
    failed: list[tuple[str, Exception]] = []
    lookup: Any = None
    network = {4: "ip4", 6: "ip6"}.get(version or 0, "ip")
    for text in texts:
        try:
            parse_ip(text)
        except AddressError:
            literal = "/" in text
        else:
            literal = True
        if literal:
            try:
                addresses = expand_targets([text], version)
            except AddressError as e:
                raise usage_error(f"{printable(text)}: {e}") from None
            if "/" not in text:
                request.labels.setdefault(addresses[0], []).append(text)
            literals.extend(addresses)
            continue
        lookup = lookup or Lookup(reactor)
        try:
            address = await lookup.resolve_ip(text, network)
        except NameLookupError as e:
            failed.append((text, e))
            continue
        try:
            found = expand_targets([str(address).partition("%")[0]], version)[0]
        except (AddressError, IndexError) as e:
            failed.append((text, e))
            continue
        request.labels.setdefault(found, []).append(text)
        literals.append(found)
    try:
        return list(expand_targets(literals, version)), failed
    except AddressError as e:
        raise usage_error(str(e)) from None


class _Totals:
    """What the passes decided, target by target, summed."""

    def __init__(self, targets: int, unknown: int) -> None:
        self.targets = targets
        self.unknown = unknown
        self.alive = 0
        self.unreachable = 0
        self.transmitted = 0
        self.received = 0
        self.duplicates = 0
        self.errors = 0
        self.damaged = 0
        self.late = 0
        self.rtts = (float("inf"), 0.0, 0.0)  # min, max, sum
        self.elapsed = 0.0
        self.complete = True

    def add(self, result: Any) -> None:
        if result.alive:
            self.alive += 1
        else:
            self.unreachable += 1
        self.transmitted += result.transmitted
        self.received += result.received
        self.duplicates += result.duplicates
        self.errors += result.errors
        if result.rtts:
            low, high, total = self.rtts
            self.rtts = (min(low, *result.rtts), max(high, *result.rtts), total + sum(result.rtts))

    def add_pass(self, summary: Any) -> None:
        self.damaged += summary.damaged
        self.late += summary.late
        self.elapsed += summary.elapsed
        self.complete = self.complete and summary.complete


def _merge(before: Any, after: Any) -> Any:
    """One target's results over two passes."""
    if before is None:
        return after
    return after._replace(
        transmitted=before.transmitted + after.transmitted,
        received=before.received + after.received,
        duplicates=before.duplicates + after.duplicates,
        errors=before.errors + after.errors,
        rtts=before.rtts + after.rtts,
        error=after.error or before.error,
    )


class _Report:
    """How each verdict, name failure and the totals are shown."""

    def __init__(self, request: SweepRequest) -> None:
        self.request = request
        self.out = sys.stdout

    def decided(self, result: Any) -> None:
        """Show *result* once for each operand that named its address."""
        for label in self.request.labels.get(result.host, [result.host]):
            self.show(result, label)

    def failed_name(self, name: str, error: Exception) -> None:
        from netproto.cli._lookup import lookup_failure

        failure = lookup_failure(error, SWEEP_NOT_FOUND, host=name)
        if self.request.json:
            emit_json(error_record(failure.kind, str(failure), host=name))
        else:
            print(f"{printable(name)}: {failure}", file=sys.stderr)

    def show(self, result: Any, label: str) -> None:
        r = self.request
        if r.json:
            emit_json(
                {
                    "host": result.host,
                    **({"name": label} if label != result.host else {}),
                    "alive": result.alive,
                    "rtt_ms": ms(result.rtt),
                    "transmitted": result.transmitted,
                    "received": result.received,
                    "duplicates": result.duplicates,
                    "error": result.error,
                }
            )
            return
        name = printable(label)
        if r.alive or r.unreachable:
            if (r.alive and result.alive) or (r.unreachable and not result.alive):
                self.out.write(name + "\n")
        elif not r.quiet and (r.style == "netproto" or r.count == 1):
            self.out.write(self.line(result, name) + "\n")
        if r.style == "fping" and r.count > 1:
            sys.stderr.write(self.fping_counts(result, name) + "\n")
        if r.style == "fping" and result.error and not r.quiet and not result.alive:
            sys.stderr.write(f"{name}: {result.error}\n")

    def line(self, result: Any, name: str) -> str:
        r = self.request
        if r.style == "fping":
            if result.alive:
                extra = f" ({format_ms(result.rtt)} ms)" if r.elapsed else ""
                return f"{name} is alive{extra}"
            return f"{name} is unreachable"
        if result.alive:
            extra = ""
            if result.transmitted > 1:
                extra = f", {result.received}/{result.transmitted} replies"
            return f"{name} is alive ({format_ms(result.rtt)} ms{extra})"
        reason = f" ({result.error})" if result.error else ""
        return f"{name} is unreachable{reason}"

    def fping_counts(self, result: Any, name: str) -> str:
        """fping -c's line for a target: xmt/rcv/%loss, and min/avg/max when it answered."""
        sent, got = result.transmitted, result.received
        loss = round(100 * (sent - got) / sent) if sent else 0
        line = f"{name} : xmt/rcv/%loss = {sent}/{got}/{loss}%"
        if result.rtts:
            rtts = [1000.0 * t for t in result.rtts]
            line += f", min/avg/max = {min(rtts):.3f}/{sum(rtts) / len(rtts):.3f}/{max(rtts):.3f}"
        return line

    def summary(self, totals: _Totals) -> None:
        r = self.request
        if r.json:
            emit_json(
                {
                    "summary": True,
                    "targets": totals.targets,
                    "alive": totals.alive,
                    "unreachable": totals.unreachable,
                    "unknown": totals.unknown,
                    "transmitted": totals.transmitted,
                    "received": totals.received,
                    "duplicates": totals.duplicates,
                    "damaged": totals.damaged,
                    "errors": totals.errors,
                    "time_ms": round(totals.elapsed * 1000.0),
                    "complete": totals.complete,
                }
            )
        elif r.statistics:
            sys.stderr.write(_statistics(totals))
        elif r.style == "netproto" and not r.quiet:
            print(_summary_line(totals), file=sys.stderr)
        self.out.flush()


def _summary_line(t: _Totals) -> str:
    seconds = t.elapsed
    rate = f" ({t.targets / seconds:,.0f} targets/s)" if seconds > 0 else ""
    stopped = ", interrupted" if not t.complete else ""
    extras = ""
    for count, what in (
        (t.unknown, "names not found"),
        (t.duplicates, "duplicates"),
        (t.damaged, "corrupted"),
        (t.errors, "errors"),
    ):
        if count:
            extras += f", {count} {what}"
    return (
        f"{t.targets} targets: {t.alive} alive, {t.unreachable} unreachable; "
        f"{t.transmitted} probes sent, {t.received} replies{extras}; "
        f"time {seconds * 1000.0:.0f}ms{rate}{stopped}"
    )


def _statistics(t: _Totals) -> str:
    """fping -s's block."""
    low, high, total = t.rtts
    average = total / t.received if t.received else 0.0
    if not t.received:
        low = 0.0
    lines = [
        "",
        f"{t.targets + t.unknown:8d} targets",
        f"{t.alive:8d} alive",
        f"{t.unreachable:8d} unreachable",
        f"{t.unknown:8d} unknown addresses",
        "",
        f"{t.transmitted - t.received - t.errors:8d} timeouts (waiting for response)",
        f"{t.transmitted:8d} ICMP Echos sent",
        f"{t.received:8d} ICMP Echo Replies received",
        f"{t.errors:8d} other ICMP received",
        "",
        f" {low * 1000:.3f} ms (min round trip time)",
        f" {average * 1000:.3f} ms (avg round trip time)",
        f" {high * 1000:.3f} ms (max round trip time)",
        f"{t.elapsed:13.3f} sec (elapsed real time)",
        "",
        "",
    ]
    return "\n".join(lines)


class _Progress:
    """A self-rewriting line on standard error while a long sweep runs."""

    def __init__(self, reactor: Any, text: Callable[[], str]) -> None:
        from twisted.internet.task import LoopingCall

        self.text = text
        self.loop = LoopingCall(self.show)
        self.loop.clock = reactor
        self.loop.start(_PROGRESS_EVERY, now=False)

    def show(self) -> None:
        sys.stderr.write(f"\r{self.text()}\x1b[K")
        sys.stderr.flush()

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


async def run_sweep(
    reactor: Any,
    client: Any,
    targets: list[str],
    failed: list[tuple[str, Exception]],
    request: SweepRequest,
) -> int:
    """Sweep *targets* as *request* says, after reporting *failed* names; the exit status."""
    report = _Report(request)
    for name, error in failed:
        report.failed_name(name, error)
    totals = _Totals(len(targets), len(failed))
    retries = request.retries if request.count == 1 else 0
    earlier: dict[str, Any] = {}
    current: list[Any] = []
    stopped = [False]

    def stop() -> None:
        stopped[0] = True
        for running in current:
            running.stop()

    deadline = reactor.callLater(request.deadline, stop) if request.deadline else None
    progress = None
    decided = [0]
    if len(targets) >= PROGRESS_FROM and sys.stderr.isatty() and not request.json:
        progress = _Progress(
            reactor, lambda: f"{decided[0]}/{len(targets)} targets decided, {totals.alive} alive"
        )
    pending = targets
    timeout = request.timeout
    try:
        for attempt in range(retries + 1):
            last = attempt == retries
            unanswered: list[str] = []

            def on_host(result: Any, last: bool = last, unanswered: list[str] = unanswered) -> None:
                result = _merge(earlier.pop(result.host, None), result)
                if result.alive or last:
                    decided[0] += 1
                    totals.add(result)
                    report.decided(result)
                else:
                    earlier[result.host] = result
                    unanswered.append(result.host)

            running = client.sweep(
                pending,
                count=request.count,
                interval=request.interval,
                timeout=timeout,
                rate=request.rate,
                size=request.size,
                on_host=on_host,
            )
            current[:] = [running]
            summary = await finish(running)
            totals.add_pass(summary)
            if not summary.complete or stopped[0] or not unanswered:
                if not summary.complete or stopped[0]:
                    totals.complete = False
                break
            pending = unanswered
            timeout *= request.backoff
    finally:
        if deadline is not None and deadline.active():
            deadline.cancel()
        if progress is not None:
            progress.stop()
    report.summary(totals)
    if failed:
        return SWEEP_NOT_FOUND
    if totals.unreachable and not (request.any and totals.alive):
        return SWEEP_UNREACHABLE
    if not totals.alive and not totals.complete and not totals.unreachable:
        # Interrupted before any verdict: nothing answered.
        return SWEEP_UNREACHABLE
    return SWEEP_ALIVE


def system_failure(message: str) -> CommandError:
    """A sweep that could not set up its sockets: fping's status 4."""
    return CommandError(message, SWEEP_SYSTEM, kind="permission")
