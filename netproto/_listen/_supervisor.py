"""
``twistd netproto --workers N``: the twistd process binds every socket, then
supervises N worker processes (:mod:`netproto._listen._worker`) that serve
them.

The sockets are bound (or taken over from systemd) in
``privilegedStartService``, before twistd's ``--uid/--gid`` take effect, and
are never read here: an inet TCP listener is bound N times with
``SO_REUSEPORT``, one socket per worker, every other socket once for all the
workers (see :mod:`netproto._listen._slots`); each worker gets its sockets as
inherited descriptors, so binding, socket activation and the privilege drop
work as with one process. The sockets stay open here: a worker that dies
leaves its connections queued for its successor (the standby, at once), and
no connection is refused meanwhile. The supervisor restarts a dead
worker after a delay that doubles while workers keep dying young (from
:data:`RESTART_DELAY` up to :data:`MAX_RESTART_DELAY`); stopping (SIGTERM,
SIGINT) sends SIGTERM to every worker and SIGKILL to any still alive after
:data:`STOP_TIMEOUT` seconds. ``--metrics`` is served here, with every
counter summed over the workers (and the workers that came before them).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

from twisted.internet import defer, error
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import DatagramProtocol, Factory, ProcessProtocol
from twisted.logger import Logger, eventFromJSON, formatEvent, globalLogPublisher
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure

from netproto._listen._backlog import effective_backlog
from netproto._listen._bound import BoundService, describe_bind_error
from netproto._listen._capped import bound_metrics
from netproto._listen._listeners import AnyAddressTCP, EndpointTCP, Listener
from netproto._listen._metrics import MetricsRegistry
from netproto._listen._root import NetprotoService, build_listeners
from netproto._listen._slots import Slots, reuse_port_group, reuses_port
from netproto._listen._summed import metrics_site, summed_registry
from netproto._listen._workers import (
    REACTOR_VARIABLE,
    STANDBY,
    WorkerPlan,
    WorkerSocket,
    access_share,
    share_of,
)
from netproto.access import AccessRules
from netproto.limits import Limits

__all__ = [
    "MAX_RESTART_DELAY",
    "RESTART_DELAY",
    "STOP_TIMEOUT",
    "SupervisedService",
    "WorkerProcess",
]

log = Logger(namespace="netproto.tap")
"""Events of this module, under the public namespace ``netproto.tap``."""

RESTART_DELAY = 0.2
"""Seconds before a dead worker is started again (the first time)."""
MAX_RESTART_DELAY = 30.0
"""The longest wait before a restart, reached when workers keep dying young."""
YOUNG = 10.0
"""A worker that dies sooner than this after its start doubles the next delay."""
STOP_TIMEOUT = 3.0
"""Seconds a worker has to exit after SIGTERM before it is killed."""
POLL_TIMEOUT = 1.0
"""Seconds a metrics scrape waits for the workers' fresh counters."""
_FIRST_SOCKET = 3
"""A worker's first inherited descriptor; the others follow."""
STANDBY_ID = 0
"""The worker id of the standby process (workers are 1 to N)."""


class WorkerProcess(ProcessProtocol):
    """One worker process: its messages, its stderr, its end."""

    def __init__(self, supervisor: SupervisedService, worker: int) -> None:
        self.supervisor = supervisor
        self.worker = worker
        self.pid: int | None = None
        self.started = supervisor.reactor.seconds()
        self.ready = False
        self.stats: list[Any] = []
        self.gauges: list[Any] = []
        self.ended: defer.Deferred[None] = defer.Deferred()
        self._waiting: list[defer.Deferred[None]] = []
        self._out = b""
        self._err = b""

    def connectionMade(self) -> None:
        self.pid = getattr(self.transport, "pid", None)

    def outReceived(self, data: bytes) -> None:
        self._out += data
        *lines, self._out = self._out.split(b"\n")
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                self._message(message)

    def _message(self, message: dict[str, Any]) -> None:
        if "stats" in message:
            self.stats = message["stats"]
            self.gauges = message.get("gauges", [])
            waiting, self._waiting = self._waiting, []
            for waiter in waiting:
                waiter.callback(None)
        elif "log" in message:
            try:
                event = eventFromJSON(message["log"])
            except Exception:
                return
            event["worker_text"] = formatEvent(event)
            event["worker"] = self.worker
            event["log_format"] = "worker {worker}: {worker_text}"
            event.pop("log_flattened", None)
            globalLogPublisher(event)
        elif "ready" in message:
            self.ready = True
            log.info(
                "netproto: worker {worker} (pid {pid}) serving {sockets}",
                worker=self.worker,
                pid=self.pid,
                sockets=_sockets(message["ready"].get("sockets")),
            )

    def errReceived(self, data: bytes) -> None:
        self._err += data
        *lines, self._err = self._err.split(b"\n")
        for line in lines:
            if line.strip():
                log.warn(
                    "worker {worker}: {line}",
                    worker=self.worker,
                    line=line.decode("utf-8", "replace"),
                )

    def poll(self) -> defer.Deferred[None]:
        """Ask for the counters now; the Deferred fires when they arrive."""
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(waiter)
        try:
            self.transport.write(b"s\n")  # type: ignore[union-attr]
        except Exception:
            waiter.callback(None)
        return waiter

    def signal(self, name: str) -> None:
        """Send signal *name* (``TERM``, ``KILL``), if the process still runs."""
        try:
            self.transport.signalProcess(name)  # type: ignore[union-attr]
        except (error.ProcessExitedAlready, OSError, AttributeError):
            pass

    def processEnded(self, reason: Failure) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(None)
        self.supervisor.worker_ended(self, reason)
        self.ended.callback(None)


class _MetricsWiring:
    """What the supervisor's own listener (``--metrics``) is served with."""

    def __init__(self, reactor: Any, site: Factory, limits: Limits) -> None:
        self.reactor = reactor
        self.backlog = effective_backlog(limits.listen_backlog)
        self.served_ports: set[int] = set()
        self.reuse_port = False
        # As one process's metrics port: a few connections, idle ones closed.
        self.site: Factory = bound_metrics(site, reactor)

    def tcp_factory(self, service: str) -> Factory:
        return self.site

    def udp_protocol(self, service: str) -> DatagramProtocol | None:
        return None


class SupervisedService(NetprotoService):
    """
    The root service of ``--workers N`` (N > 1): binds every listener, then
    runs N worker processes that serve them (see the module's docstring).
    """

    def __init__(
        self,
        reactor: Any,
        listeners: list[Listener],
        *,
        workers: int,
        limits: Limits,
        options: Mapping[str, Any],
        daemon: bool = False,
        log_to_stdout: bool = False,
        stats_interval: float = 1.0,
        journal: bool = False,
    ) -> None:
        super().__init__(daemon=daemon, log_to_stdout=log_to_stdout, journal=journal)
        self.reactor = reactor
        self.workers = workers
        self.limits = limits
        self.options = options
        self.stats_interval = stats_interval
        served = [listener for listener in listeners if listener.service != "metrics"]
        build_listeners(
            self, reactor, served, limits=limits, options=options, reuse_port=workers > 1
        )
        wiring = _MetricsWiring(reactor, metrics_site(self), limits)
        for listener in listeners:
            if listener.service == "metrics":
                listener.make_service(wiring).setServiceParent(self)
        self.processes: dict[int, WorkerProcess] = {}
        self.restarts: dict[int, int] = dict.fromkeys(range(1, workers + 1), 0)
        #: Every listener served, with its sockets' descriptors here: one (shared
        #: by the workers) or one per worker (a reuse-port group).
        self.sockets: list[tuple[BoundService, tuple[int, ...]]] = []
        self._group: list[socket.socket] = []
        self._delays: dict[int, float] = dict.fromkeys(range(1, workers + 1), RESTART_DELAY)
        self._pending: dict[int, Any] = {}
        self._retired: list[Any] = []
        self._retired_by_worker: dict[int, list[Any]] = {}
        self._stopping = False
        self._delays[STANDBY_ID] = RESTART_DELAY
        #: A worker process started ahead of need (imported, waiting for its
        #: plan): the next worker to die is replaced by it at once.
        self.standby: WorkerProcess | None = None

    def privilegedStartService(self) -> None:
        """Bind every socket (as NetprotoService does) and the rest of each reuse-port
        group, then stop reading them: the workers do."""
        super().privilegedStartService()
        for child in self:
            if not isinstance(child, BoundService) or child.skipped:
                continue
            if child.listener.service == "metrics" or child.port is None:
                continue
            port = child.port
            if isinstance(getattr(port, "factory", None), WrappingFactory):
                self._fail(
                    child.listener.option,
                    child.listener.describe(),
                    "a TLS (or other wrapped) endpoint cannot be shared by workers; "
                    "serve it with --workers 1",
                )
            port.stopReading()
            self.sockets.append((child, self._group_of(child, port)))

    def _group_of(self, child: BoundService, port: IListeningPort) -> tuple[int, ...]:
        """*port*'s descriptor, and those of the N - 1 sockets bound beside it if it
        is the first of a reuse-port group."""
        fileno: int = port.fileno()  # type: ignore[attr-defined]
        # Only a TCP socket bound here: one systemd passed keeps its own options
        # (ReusePort= there included) and is shared, as is every UDP socket.
        ours = isinstance(child.listener, (AnyAddressTCP, EndpointTCP))
        if self.workers == 1 or not ours or not reuses_port(fileno):
            return (fileno,)
        backlog = getattr(port, "backlog", effective_backlog(self.limits.listen_backlog))
        try:
            more = reuse_port_group(fileno, self.workers - 1, backlog)
        except OSError as exc:
            for sock in self._group:
                sock.close()
            self._fail(child.listener.option, child.listener.describe(), describe_bind_error(exc))
        self._group.extend(more)
        return (fileno, *(sock.fileno() for sock in more))

    def startService(self) -> None:
        """Log what is served, start every worker."""
        super().startService()
        services = sorted({child.listener.service for child, _ in self.sockets})
        grouped = sum(1 for _, fds in self.sockets if len(fds) > 1)
        log.info(
            "netproto: {workers} workers serve {services} on {sockets}{grouped}",
            workers=self.workers,
            services=", ".join(services),
            sockets=_sockets(len(self.sockets)),
            grouped=f", each of the {grouped} TCP ones bound once per worker (SO_REUSEPORT)"
            if grouped
            else "",
        )
        for worker in range(1, self.workers + 1):
            self._spawn(worker)
        self._spawn(STANDBY_ID)

    @property
    def slots(self) -> Slots:
        """Where the sockets sit in a worker, and which of them each worker serves."""
        return Slots([len(fds) for _, fds in self.sockets], _FIRST_SOCKET)

    def plan(self, worker: int) -> WorkerPlan:
        """What worker *worker* (1 to N) is started with."""
        slots = self.slots
        return WorkerPlan(
            worker=worker,
            workers=self.workers,
            limits=share_of(self.limits, self.workers, worker - 1),
            options=self.options,
            sockets=tuple(
                WorkerSocket(
                    child.listener.service,
                    child.listener.option,
                    child.served(),
                    slots.served(index, worker),
                )
                for index, (child, _) in enumerate(self.sockets)
            ),
            unused=slots.unused(worker),
            stats_interval=self.stats_interval,
            access=access_share(_access(self.options), self.workers, worker - 1),
        )

    def _spawn(self, worker: int) -> None:
        self._pending.pop(worker, None)
        if self._stopping or (worker == STANDBY_ID and self.standby is not None):
            return
        process = WorkerProcess(self, worker)
        # Every socket, in the same place in every worker (the standby may become any).
        fds: dict[int, int | str] = {0: "w", 1: "r", 2: "r"}
        here = [fd for _, group in self.sockets for fd in group]
        for index, fd in enumerate(here):
            fds[_FIRST_SOCKET + index] = fd
        executable = sys.executable
        try:
            self.reactor.spawnProcess(
                process,
                executable,
                [executable, "-m", "netproto._listen._worker", self._argument(worker)],
                env=_worker_environment(self.reactor),
                childFDs=fds,
            )
        except Exception as exc:
            delay = self._schedule(worker, lived=0.0)
            log.error(
                "netproto: cannot start worker {worker}: {why}; trying again in {delay:.1f} s",
                worker=worker,
                why=str(exc) or type(exc).__name__,
                delay=delay,
            )
            return
        if worker == STANDBY_ID:
            self.standby = process
        else:
            self.processes[worker] = process

    def _argument(self, worker: int) -> str:
        return STANDBY if worker == STANDBY_ID else self.plan(worker).to_json()

    def _take_standby(self, worker: int) -> bool:
        """Make the standby process worker *worker* now; False if there is none."""
        process, self.standby = self.standby, None
        if process is None or process.transport is None:
            return False
        process.worker = worker
        process.started = self.reactor.seconds()
        process.transport.write(self.plan(worker).to_json().encode("utf-8") + b"\n")
        self.processes[worker] = process
        # Another standby, no sooner than a restart would have been.
        self._pending[STANDBY_ID] = self.reactor.callLater(RESTART_DELAY, self._spawn, STANDBY_ID)
        return True

    def _schedule(self, worker: int, lived: float) -> float:
        """Start *worker* again later: after RESTART_DELAY, doubled each time it died young."""
        delay = self._delays[worker]
        if lived >= YOUNG:
            delay = RESTART_DELAY
        self._delays[worker] = min(delay * 2, MAX_RESTART_DELAY)
        self._pending[worker] = self.reactor.callLater(delay, self._spawn, worker)
        return delay

    def worker_ended(self, process: WorkerProcess, reason: Failure) -> None:
        """A worker ended: keep its counters, restart it unless stopping."""
        worker = process.worker
        if process is self.standby:
            self.standby = None
            if not self._stopping:
                lived = self.reactor.seconds() - process.started
                delay = self._schedule(STANDBY_ID, lived)
                log.warn(
                    "netproto: the standby worker (pid {pid}) ended ({why}); "
                    "starting another in {delay:.1f} s",
                    pid=process.pid,
                    why=_why(reason),
                    delay=delay,
                )
            return
        if self.processes.get(worker) is process:
            del self.processes[worker]
        self._retired.extend(process.stats)
        self._retired_by_worker.setdefault(worker, []).extend(process.stats)
        if self._stopping:
            return
        lived = self.reactor.seconds() - process.started
        self.restarts[worker] += 1
        if lived >= YOUNG:
            self._delays[worker] = RESTART_DELAY
        if self._delays[worker] <= RESTART_DELAY and self._take_standby(worker):
            # Not dying young in a row: the standby takes over at once; the
            # next death within YOUNG seconds waits as a restart would.
            self._delays[worker] = RESTART_DELAY * 2
            log.warn(
                "netproto: worker {worker} (pid {pid}) ended ({why}) after {lived:.1f} s; "
                "the standby (pid {standby}) takes over",
                worker=worker,
                pid=process.pid,
                why=_why(reason),
                lived=lived,
                standby=self.processes[worker].pid,
            )
            return
        delay = self._schedule(worker, lived)
        log.warn(
            "netproto: worker {worker} (pid {pid}) ended ({why}) after {lived:.1f} s; "
            "restarting it in {delay:.1f} s",
            worker=worker,
            pid=process.pid,
            why=_why(reason),
            lived=lived,
            delay=delay,
        )

    def stopService(self) -> defer.Deferred[None]:
        """SIGTERM every worker (SIGKILL after STOP_TIMEOUT), then close the sockets."""
        self._stopping = True
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()
        everyone = [*self.processes.values(), *([self.standby] if self.standby else [])]
        ended = [process.ended for process in everyone]
        for process in everyone:
            process.signal("TERM")
        kill = self.reactor.callLater(STOP_TIMEOUT, self._kill_all)

        def close(_: object) -> Any:
            if kill.active():
                kill.cancel()
            log.info("netproto: every worker stopped")
            for sock in self._group:
                sock.close()
            self._group.clear()
            return NetprotoService.stopService(self)

        return defer.DeferredList(ended).addCallback(close)

    def _kill_all(self) -> None:
        for process in [*self.processes.values(), *([self.standby] if self.standby else [])]:
            log.warn(
                "netproto: worker {worker} (pid {pid}) did not stop in {timeout} s; killing it",
                worker=process.worker,
                pid=process.pid,
                timeout=STOP_TIMEOUT,
            )
            process.signal("KILL")

    def poll(self) -> defer.Deferred[None]:
        """Fresh counters from every worker (or what arrived within POLL_TIMEOUT)."""
        result: defer.Deferred[None] = defer.Deferred()

        def fire(_: object = None) -> None:
            if not result.called:
                result.callback(None)

        timer = self.reactor.callLater(POLL_TIMEOUT, fire)

        def finished(_: object) -> None:
            if timer.active():
                timer.cancel()
            fire()

        waiting = [process.poll() for process in self.processes.values()]
        defer.DeferredList(waiting).addCallback(finished)
        return result

    @property
    def metrics(self) -> MetricsRegistry:
        """The registry ``--metrics`` serves: the workers' sums, the per-worker metrics."""
        registry = self.__dict__.get("_metrics")
        if registry is None:
            registry = self.__dict__["_metrics"] = summed_registry(self)
        return registry

    def render_metrics(self) -> str:
        """The metrics page as it stands (Prometheus text format)."""
        return self.metrics.render()

    def summed(self) -> tuple[list[tuple[str, str, dict[str, int]]], list[tuple[str, str, int]]]:
        """Every worker's counters (the dead ones' kept) and gauges, for the metrics."""
        sources: list[tuple[str, str, dict[str, int]]] = [tuple(s) for s in self._retired]
        gauges: list[tuple[str, str, int]] = []
        for process in self.processes.values():
            sources.extend(tuple(s) for s in process.stats)
            gauges.extend(tuple(g) for g in process.gauges)
        return sources, gauges


def _sockets(count: object) -> str:
    return f"{count} socket" if count == 1 else f"{count} sockets"


def _why(reason: Failure) -> str:
    value = reason.value
    signal_number = getattr(value, "signal", None)
    if signal_number:
        try:
            return f"signal {signal.Signals(signal_number).name}"
        except ValueError:
            return f"signal {signal_number}"
    code = getattr(value, "exitCode", None)
    return f"exit status {code}"


def _worker_environment(reactor: Any) -> dict[str, str]:
    """This process's environment for a worker: the same imports, the same kind of
    reactor (``twistd -r``), no systemd variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
    }
    paths = [p for p in sys.path if p]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    module = sys.modules.get(type(reactor).__module__)
    if module is not None and callable(getattr(module, "install", None)):
        env[REACTOR_VARIABLE] = module.__name__
    return env


def _access(options: Mapping[str, Any]) -> AccessRules | None:
    """The plugin's ``--allow``/``--deny``/``--connection-rate`` rules, if any is set."""
    rules = options.get("access")
    return rules if isinstance(rules, AccessRules) and rules.active else None
