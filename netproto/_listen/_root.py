"""
The plugin's root service, and the wiring of listeners to services: one TCP
factory per service from the table of services (:data:`SERVICES`), a datagram
protocol per UDP socket, one set of served UDP ports, one metrics registry.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from twisted.application.service import IService, MultiService, Service
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.logger import Logger

from netproto._listen._backlog import effective_backlog
from netproto._listen._bound import BindError, BoundService
from netproto._listen._capped import bound_metrics
from netproto._listen._fds import fit_and_report
from netproto._listen._listeners import Listener
from netproto._listen._metrics import MetricsRegistry, metrics_site
from netproto._listen._notify import notify, status_text
from netproto._listen._table import SERVICES
from netproto._twisted import fast_dispatch
from netproto.access import AccessControl, AccessRules
from netproto.limits import Limits

__all__ = ["NetprotoService", "build_listeners"]

log = Logger(namespace="netproto.tap")
"""Events of this module, under the public namespace ``netproto.tap``."""


_REPORTED = 88
"""What fits of a message in twistd's 100-byte start-up report, after ``1 netproto: ``."""


class _StartError(Exception):
    """
    A daemon's failure to start, as twistd's start-up report shows it: the
    line is ``netproto: MESSAGE`` (the name set below), not a dotted path to
    the class eating into the 100 bytes twistd passes on.
    """


_StartError.__module__ = "builtins"
_StartError.__qualname__ = _StartError.__name__ = "netproto"


class NetprotoService(MultiService):
    """The plugin's root service: binds every listener first, fails as one clean line.

    If any listener cannot bind, the ones already bound are closed, one
    critical event names the option and the reason, and the process exits 1:
    in the foreground with that one line on stderr and no traceback (and no
    critical event when the log goes to standard output, *log_to_stdout*:
    the terminal shows the line once); as a daemon (*daemon* true) through
    twistd's start-up status report, which shows at most 100 bytes: the
    option and the reason. Still running as root on a port below 1024 after
    twistd's privilege drop logs a warning.

    Once every socket is bound and the service runs, a service manager
    that asked for it (``$NOTIFY_SOCKET`` in *environ*, ``os.environ`` by
    default) is told ``READY=1`` with a ``STATUS=`` naming what is served,
    so a ``Type=notify`` unit starts its dependents only then; stopping
    tells it ``STOPPING=1``. With *journal* true (the log is the journal's
    standard output, see :mod:`netproto.journal`) a bind failure is one
    critical event in the log and nothing more on stderr.
    """

    def __init__(
        self,
        *,
        daemon: bool = False,
        log_to_stdout: bool = False,
        journal: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.daemon = daemon
        self.log_to_stdout = log_to_stdout and not journal
        self.journal = journal
        self.environ = environ

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        started: list[IService] = []
        for child in self:
            try:
                child.privilegedStartService()
            except BindError as exc:
                for done in started:
                    done.stopService()
                listener = getattr(child, "listener")  # noqa: B009 (a BoundService)
                self._fail(listener.option, listener.describe(), str(exc))
            started.append(child)

    def _fail(self, option: str, where: str, reason: str) -> None:
        message = f"{option}: cannot listen on {where}: {reason}"
        if self.daemon or not self.log_to_stdout:
            log.critical("netproto: {message}", message=message)
        notify({"STATUS": f"failed: {message}"}, self.environ)
        if self.daemon:
            # twistd's daemon parent waits on a status pipe that only an
            # Exception (not SystemExit) reports, with the pid file removed,
            # and shows the first 100 bytes of its last traceback line.
            short = f"{option}: {reason}"
            if len(short) > _REPORTED:
                # A remedy in parentheses is in the log file; the report keeps the reason.
                reason = reason.partition(" (")[0]
                short = f"{option}: {reason}"
            if len(short) > _REPORTED:
                short = f"{option[: _REPORTED - len(reason) - 5]}...: {reason}"
            raise _StartError(short[:_REPORTED]) from None
        stderr = sys.__stderr__
        if not self.journal and stderr is not None and not stderr.closed:
            try:
                stderr.write(f"netproto: {message}\n")
                stderr.flush()
            except OSError:
                pass
        raise SystemExit(1)

    #: The reactor the services run on (set by :func:`build_listeners`).
    reactor: Any = None

    def startService(self) -> None:
        # Events go straight to their handlers (see netproto._twisted.fast_dispatch).
        if self.reactor is not None:
            fast_dispatch(self.reactor)
        MultiService.startService(self)
        served: list[str] = []
        for child in self:
            if isinstance(child, BoundService) and not child.skipped:
                log.info(
                    "netproto: {service} on {where}",
                    service=child.listener.service,
                    where=child.served(),
                )
                served.append(f"{child.listener.service} on {child.served()}")
        notify({"READY": "1", "STATUS": status_text(served)}, self.environ)
        if os.geteuid() == 0:
            low = sorted(
                {
                    number
                    for child in self
                    if isinstance(child, BoundService)
                    and (number := child.listening_port()) is not None
                    and 0 < number < 1024
                }
            )
            if low:
                log.warn(
                    "netproto: running as root on privileged port(s) {ports}; "
                    "pass --uid and --gid to twistd to drop privileges after binding",
                    ports=", ".join(map(str, low)),
                )

    def stopService(self) -> Any:
        notify({"STOPPING": "1", "STATUS": "stopping"}, self.environ)
        return MultiService.stopService(self)


class _Wiring:
    """What the listeners of one root service are served with (see ``Wiring``)."""

    def __init__(
        self, reactor: Any, limits: Limits, options: Mapping[str, Any], reuse_port: bool = False
    ) -> None:
        self.reactor = reactor
        self.limits = limits
        self.options = options
        self.reuse_port = reuse_port
        self.backlog = effective_backlog(limits.listen_backlog)
        self.served_ports: set[int] = set()
        self.registry = MetricsRegistry()
        self._factories: dict[str, Factory] = {}
        rules = options.get("access")
        # Only when a rule is set: otherwise the data path has no check at all.
        self.access: AccessRules | None = (
            rules if isinstance(rules, AccessRules) and rules.active else None
        )

    def tcp_factory(self, service: str) -> Factory:
        made = self._factories.get(service)
        if made is None:
            if service == "metrics":
                made = bound_metrics(metrics_site(self.registry), self.reactor)
            else:
                made = SERVICES[service].tcp(self.reactor, self.limits, self.options)
                if self.access is not None:
                    made.access = AccessControl(self.access)  # type: ignore[attr-defined]
                self.registry.register(service, "tcp", made)
            self._factories[service] = made
        return made

    def udp_protocol(self, service: str) -> DatagramProtocol | None:
        if service == "metrics":
            return None
        made = SERVICES[service].udp(self.reactor, self.limits, self.options, self.served_ports)
        if self.access is not None:
            made.access = AccessControl(self.access)  # type: ignore[attr-defined]
        self.registry.register(service, "udp", made)
        return made


def build_listeners(
    root: MultiService,
    reactor: Any,
    listeners: list[Listener],
    *,
    limits: Limits,
    options: Mapping[str, Any] | None = None,
    reuse_port: bool = False,
) -> MetricsRegistry:
    """
    Add a service to *root* for each listener; return the metrics registry.

    One TCP factory per service is shared by its TCP listeners (so the
    connection caps count over all of them); each UDP listener gets its own
    datagram protocol. Every UDP port bound is added to one shared set of
    served ports, the loop guard of every datagram protocol. *options* are
    the plugin's options the services read (``daytime-format``, ``utc``).
    The caps are first fitted to the descriptor limit (``_fds``). With
    *reuse_port*, inet TCP listeners are bound with ``SO_REUSEPORT`` (the
    supervisor of ``--workers`` then binds one more per worker beside each).
    """
    limits = fit_and_report(limits, listeners)
    wiring = _Wiring(reactor, limits, options or {}, reuse_port)
    for listener in listeners:
        listener.make_service(wiring).setServiceParent(root)
    root.registry = wiring.registry  # type: ignore[attr-defined]
    root.reactor = reactor  # type: ignore[attr-defined]
    root.served_ports = wiring.served_ports  # type: ignore[attr-defined]
    return wiring.registry
