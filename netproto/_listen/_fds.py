"""
Caps that fit the descriptor limit. At start the connection caps are checked
against ``RLIMIT_NOFILE``: the soft limit is raised towards the hard one as
far as the caps need (any process may), and if the caps still do not fit,
``max_connections`` is lowered to what does, with one warning. Without this,
a 1024-fd soft limit ran out of descriptors before ``--max-connections=4096``
engaged, and clients were reset instead of refused in order.
"""

from __future__ import annotations

import dataclasses
import resource
from collections.abc import Callable, Sequence
from typing import Any

from twisted.logger import Logger

from netproto._listen._capped import METRICS_MAX_CONNECTIONS
from netproto._listen._listeners import UDP, Listener
from netproto.limits import Limits

__all__ = ["RESERVED_FDS", "FdFit", "descriptors_needed", "fit_and_report", "fit_descriptors"]

log = Logger(namespace="netproto.tap")
"""Events of this module, under the public namespace ``netproto.tap``."""

RESERVED_FDS = 64
"""
Descriptors kept out of the connection caps: standard streams, log files,
the reactor's own (epoll, waker, Twisted's EMFILE reserve), DNS and
``/proc`` reads, and one per listener for the connection being refused.
"""


@dataclasses.dataclass(frozen=True)
class FdFit:
    """What :func:`fit_descriptors` did: the limits to serve with, and what changed."""

    limits: Limits
    soft: int
    """The soft ``RLIMIT_NOFILE`` in force afterwards."""
    raised_from: int | None = None
    """The soft limit before it was raised, if it was."""
    lowered_from: int | None = None
    """``max_connections`` before it was lowered, if it was."""
    services: int = 0
    """TCP services whose connections count against the limit."""


def _tcp_services(listeners: Sequence[Listener]) -> set[str]:
    return {
        listener.service
        for listener in listeners
        if not isinstance(listener, UDP) and listener.service != "metrics"
    }


def descriptors_needed(limits: Limits, listeners: Sequence[Listener]) -> int | None:
    """Descriptors the caps can use at most; ``None`` when a cap is unlimited."""
    if not limits.max_connections:
        return None
    metrics = any(listener.service == "metrics" for listener in listeners)
    fixed = RESERVED_FDS + 2 * len(listeners) + (METRICS_MAX_CONNECTIONS if metrics else 0)
    return fixed + limits.max_connections * len(_tcp_services(listeners))


def fit_descriptors(
    limits: Limits,
    listeners: Sequence[Listener],
    getrlimit: Callable[[int], tuple[int, int]] = resource.getrlimit,
    setrlimit: Callable[[int, tuple[int, int]], Any] = resource.setrlimit,
) -> FdFit:
    """
    Make the connection caps of *limits* fit ``RLIMIT_NOFILE`` for *listeners*:
    raise the soft limit (up to the hard one) as far as they need, or, when
    even the hard limit is too low, lower ``max_connections`` to what fits
    (at least 1). An unlimited cap asks for the hard limit and is kept.
    """
    kind = resource.RLIMIT_NOFILE
    soft, hard = getrlimit(kind)
    services = len(_tcp_services(listeners))
    need = descriptors_needed(limits, listeners)
    unlimited = resource.RLIM_INFINITY
    if not services or (need is not None and soft != unlimited and need <= soft):
        return FdFit(limits, soft, services=services)
    if soft == unlimited:
        return FdFit(limits, soft, services=services)
    wanted = hard if need is None else need
    target = wanted if hard == unlimited else min(wanted, hard)
    raised_from = None
    if target > soft:
        try:
            setrlimit(kind, (target, hard))
        except (OSError, ValueError):
            pass
        else:
            raised_from, soft = soft, target
    if need is None or need <= soft:
        return FdFit(limits, soft, raised_from=raised_from, services=services)
    room = soft - (need - limits.max_connections * services)
    fitted = max(1, room // services)
    return FdFit(
        dataclasses.replace(limits, max_connections=fitted),
        soft,
        raised_from=raised_from,
        lowered_from=limits.max_connections,
        services=services,
    )


def fit_and_report(limits: Limits, listeners: Sequence[Listener]) -> Limits:
    """:func:`fit_descriptors`, with one log event when it changed anything."""
    fit = fit_descriptors(limits, listeners)
    if fit.lowered_from is not None:
        log.warn(
            "netproto: {soft} file descriptors (RLIMIT_NOFILE) hold {fitted} connections "
            "for each of {services} TCP service(s): --max-connections lowered from "
            "{before} to {fitted}; raise the limit (ulimit -n, systemd LimitNOFILE=) "
            "to keep it",
            soft=fit.soft,
            fitted=fit.limits.max_connections,
            services=fit.services,
            before=fit.lowered_from,
        )
    elif fit.raised_from is not None:
        log.info(
            "netproto: file descriptor limit raised from {before} to {soft} for the "
            "connection caps",
            before=fit.raised_from,
            soft=fit.soft,
        )
    return fit.limits
