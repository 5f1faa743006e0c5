"""
Bounds for the ``--metrics`` port: a few connections at once and a short idle
timeout, so idle connections to it cannot take the descriptors the services
need (250 of them once took every fd of a 256-fd process).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory
from twisted.protocols.policies import WrappingFactory

from netproto._service import Refused

__all__ = ["METRICS_IDLE_TIMEOUT", "METRICS_MAX_CONNECTIONS", "CappedFactory", "bound_metrics"]

METRICS_MAX_CONNECTIONS = 8
"""Connections to the metrics port at once; more are reset and closed at once."""

METRICS_IDLE_TIMEOUT = 5.0
"""Seconds a metrics connection may sit without a request before it is closed."""


class CappedFactory(WrappingFactory):
    """
    *wrapped* with at most *limit* connections at once: one more is reset and
    closed before the next is accepted, nothing read or written; ``refused``
    counts them.
    """

    noisy = False

    def __init__(self, wrapped: Factory, limit: int) -> None:
        super().__init__(wrapped)
        self.limit = limit
        self.refused = 0

    def buildProtocol(self, addr: IAddress | None) -> Any:
        if len(self.protocols) >= self.limit:
            self.refused += 1
            return Refused()
        return super().buildProtocol(addr)


def bound_metrics(site: Any, reactor: Any = None) -> Any:
    """
    The metrics *site* (a :class:`twisted.web.server.Site`) capped at
    :data:`METRICS_MAX_CONNECTIONS` connections, each closed after
    :data:`METRICS_IDLE_TIMEOUT` seconds without a request (timed on
    *reactor* when given).
    """
    site.timeOut = METRICS_IDLE_TIMEOUT
    if reactor is not None:
        site.reactor = reactor
    return CappedFactory(site, METRICS_MAX_CONNECTIONS)
