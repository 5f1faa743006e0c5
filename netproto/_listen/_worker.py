"""
One worker process of ``twistd netproto --workers N``:
``python -m netproto._listen._worker PLAN``.

The supervisor (:mod:`netproto._listen._supervisor`) bound every socket and
passes them as descriptors 3, 4, ...; the worker closes the ones of the other
workers (the sockets of a reuse-port group, :mod:`netproto._listen._slots`),
adopts each of its own (a stream socket with ``adoptStreamPort``, a datagram
socket into the plugin's own UDP port through :mod:`netproto._twisted`) and
serves it with the services of the table, under its share of the limits. The
kernel hashes each TCP connection to one worker's socket of a group; on a
socket every worker serves (UDP, UNIX, systemd's), whichever worker takes a
connection or a datagram first has it.

Standard input carries the supervisor's requests (``s``: report the counters
now); its end (the supervisor is gone) stops the worker. Standard output
carries one JSON object a line: ``{"ready": ...}`` once serving, ``{"stats":
...}`` with the counters (every ``stats_interval`` seconds, on request, and
once more when stopping) and ``{"log": ...}`` for every log event, which the
supervisor logs again with the worker's id. SIGTERM stops the worker: it
stops accepting, reports its counters one last time and exits. SIGINT is
ignored: a Ctrl-C reaches the supervisor, which stops every worker itself.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
from typing import Any, cast

from twisted.application.service import MultiService
from twisted.internet import stdio, task
from twisted.internet.protocol import Protocol
from twisted.logger import ILogObserver, LogLevel, eventAsJSON, globalLogBeginner

from netproto._listen._bound import BindError, BoundService
from netproto._listen._listeners import Inherited
from netproto._listen._root import build_listeners
from netproto._listen._workers import REACTOR_VARIABLE, STANDBY, WorkerPlan
from netproto._twisted import fast_dispatch

__all__ = ["Worker", "main"]

_GRACE = 2.0
"""Seconds the final report may take to leave before the worker exits anyway."""


class Worker(Protocol):
    """The worker's link to its supervisor (standard input and output), and its life cycle."""

    def __init__(self, reactor: Any, plan: WorkerPlan) -> None:
        self.reactor = reactor
        self.plan = plan
        self.root = MultiService()
        self.registry = build_listeners(
            self.root,
            reactor,
            [Inherited(s.service, s.option, s.description, s.fd) for s in plan.sockets],
            limits=plan.limits,
            options={**plan.options, "access": plan.access},
        )
        self._buffer = b""
        self._stopping = False
        self._quiet = True
        self._reporter = task.LoopingCall(self.report)
        self._reporter.clock = reactor

    def serve(self) -> None:
        """Close the other workers' sockets, adopt ours and start serving, with events
        handed straight to their handlers as in one process (``fast_dispatch``); exit 1
        with one line if a socket cannot be served."""
        for fd in self.plan.unused:
            try:
                os.close(fd)
            except OSError:
                pass
        for child in self.root:
            try:
                child.privilegedStartService()
            except BindError as exc:
                listener = getattr(child, "listener")  # noqa: B009 (a BoundService)
                sys.stderr.write(f"{listener.option}: cannot serve {listener.describe()}: {exc}\n")
                sys.stderr.flush()
                raise SystemExit(1) from None
        # As NetprotoService.startService does for one process: the worker's
        # root is a plain MultiService, which would leave every event going
        # through the reactor's per-event log context.
        fast_dispatch(self.reactor)
        self.root.startService()
        self._quiet = False
        self.send({"ready": {"pid": os.getpid(), "sockets": len(self.plan.sockets)}})
        if self.plan.stats_interval > 0:
            self._reporter.start(self.plan.stats_interval, now=True)

    def send(self, message: dict[str, Any]) -> None:
        """One JSON line to the supervisor."""
        if self.transport is not None and not self._closed():
            self.transport.write(json.dumps(message).encode("utf-8") + b"\n")

    def _closed(self) -> bool:
        return bool(getattr(self.transport, "disconnected", False))

    def report(self) -> None:
        """Send the counters and gauges of every service."""
        self.send(
            {
                "stats": [list(s) for s in self.registry.snapshots()],
                "gauges": [list(g) for g in self.registry.gauges()],
            }
        )

    def log_event(self, event: dict[str, Any]) -> None:
        """A log observer: the event, as JSON, to the supervisor.

        The informational events of adopting the sockets (Twisted's "starting
        on" lines, one per socket and worker) are left out: the supervisor
        said what is served.
        """
        if self._quiet and event.get("log_level", LogLevel.info) in (LogLevel.debug, LogLevel.info):
            return
        self.send({"log": eventAsJSON(event)})

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if any(line.strip() == b"s" for line in lines):
            self.report()
        self._buffer = self._buffer[-64:]

    def connectionLost(self, reason: Any = None) -> None:
        """The supervisor is gone (or our report went out as we stop): exit."""
        self.stop()
        if self.reactor.running:
            self.reactor.stop()

    def stop(self) -> None:
        """Stop accepting, report one last time, and exit once it has left."""
        if self._stopping:
            return
        self._stopping = True
        for child in self.root:
            port = child.port if isinstance(child, BoundService) else None
            if port is not None:
                # Not stopListening: the supervisor owns the sockets (and a UNIX
                # socket's file, which closing a port would remove).
                port.stopReading()
        if self._reporter.running:
            self._reporter.stop()
        self.report()
        if self.transport is not None:
            self.transport.loseConnection()
        self.reactor.callLater(_GRACE, self._exit)

    def _exit(self) -> None:
        if self.reactor.running:
            self.reactor.stop()


def _install_reactor(name: str | None) -> None:
    """Install the reactor of module *name* (the supervisor's kind), or leave the default."""
    if not name or "twisted.internet.reactor" in sys.modules:
        return
    try:
        importlib.import_module(name).install()
    except Exception as exc:
        sys.stderr.write(f"netproto worker: cannot install the reactor of {name}: {exc}\n")


def _read_plan_line() -> bytes:
    """One line from standard input, read without buffering past it (EOF: b"")."""
    line = bytearray()
    while True:
        byte = os.read(0, 1)
        if not byte or byte == b"\n":
            return bytes(line)
        line += byte


def main(argv: list[str]) -> int:
    """Run one worker with the plan in ``argv[1]`` (or, with ``--standby``, the
    first line of standard input, once everything is imported); the exit status."""
    if len(argv) != 2:
        sys.stderr.write("usage: python -m netproto._listen._worker PLAN (run by the supervisor)\n")
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _install_reactor(os.environ.get(REACTOR_VARIABLE))
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor
    text = argv[1]
    if text == STANDBY:
        # Imported and ready: a restart now costs no interpreter start-up.
        text = _read_plan_line().decode("utf-8", "replace")
        if not text:
            return 0
    try:
        plan = WorkerPlan.from_json(text)
    except ValueError as exc:
        sys.stderr.write(f"netproto worker: {exc}\n")
        return 2
    worker = Worker(reactor, plan)
    stdio.StandardIO(worker, reactor=reactor)
    globalLogBeginner.beginLoggingTo(
        [cast(ILogObserver, worker.log_event)], redirectStandardIO=False
    )

    def terminated(signum: int, frame: Any) -> None:
        reactor.callFromThread(worker.stop)

    signal.signal(signal.SIGTERM, terminated)
    worker.serve()
    reactor.run(installSignalHandlers=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
