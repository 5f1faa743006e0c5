"""
Running out of descriptors, as an episode with a beginning and an end rather
than a log line per connection: while ``accept`` fails with EMFILE (or
ENFILE, ENOBUFS, ENOMEM) the port stops accepting and retries a few times a
second; the connections wait in the listen backlog instead of being reset.
Each episode logs two lines, when it starts and when accepts resume, and
every failed accept is counted as ``tcp_accept_errors``.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.logger import Logger

from netproto._twisted import guard_accepts

__all__ = ["RETRY_INTERVAL", "AcceptPause", "pause_when_exhausted"]

log = Logger(namespace="netproto.tap")
"""Events of this module, under the public namespace ``netproto.tap``."""

RETRY_INTERVAL = 0.25
"""Seconds between two accept attempts while descriptors are exhausted."""


class AcceptPause:
    """The exhaustion episodes of one listening *port* serving *where*."""

    def __init__(self, port: Any, where: str, counters: Any = None, reactor: Any = None) -> None:
        self.port = port
        self.where = where
        self.counters = counters
        self.reactor: Any = reactor if reactor is not None else getattr(port, "reactor", None)
        self.failed = 0
        """Accepts that failed in the current episode (0: none going on)."""
        self.episodes = 0
        self._started = 0.0
        self._retry: Any = None

    def exhausted(self, error: int) -> None:
        """``accept`` failed for lack of descriptors: pause, count, log if it starts now."""
        if self.counters is not None:
            self.counters.add("tcp_accept_errors")
        if not self.failed:
            self.episodes += 1
            self._started = self.reactor.seconds()
            log.warn(
                "netproto: {where}: out of file descriptors ({error}): accepts paused, "
                "connections wait in the backlog; lower --max-connections or raise the "
                "fd limit",
                where=self.where,
                error=os.strerror(error),
            )
        self.failed += 1
        self.port.stopReading()
        if self._retry is None:
            self._retry = self.reactor.callLater(RETRY_INTERVAL, self._resume)

    def _resume(self) -> None:
        self._retry = None
        if self.port.connected and not self.port.disconnecting:
            self.port.startReading()

    def accepted(self) -> None:
        """An accept succeeded: the episode, if any, is over."""
        if self.failed:
            log.info(
                "netproto: {where}: accepting again after {failed} failed accepts in "
                "{seconds:.1f} s",
                where=self.where,
                failed=self.failed,
                seconds=self.reactor.seconds() - self._started,
            )
            self.failed = 0

    def stop(self) -> None:
        """Cancel a pending retry (the port is closing)."""
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None


def pause_when_exhausted(port: Any, where: str, factory: Any) -> AcceptPause | None:
    """
    Guard *port* (see :func:`netproto._twisted.guard_accepts`) with an
    :class:`AcceptPause` counting into *factory*'s counters (or those of the
    factory it wraps); ``None`` if *port* cannot be guarded.
    """
    counters = getattr(factory, "counters", None)
    if counters is None:
        counters = getattr(getattr(factory, "wrappedFactory", None), "counters", None)
    pause = AcceptPause(port, where, counters)
    return pause if guard_accepts(port, pause.exhausted, pause.accepted) else None
