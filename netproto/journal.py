"""
Log events as the systemd journal reads a service's standard output: each line
starts with its syslog priority (``<6>`` info, ``<4>`` warn, ``<3>`` error,
``<2>`` critical, ``<7>`` debug) and carries no timestamp, since the journal
stamps every line itself. Use it as twistd's log observer::

    twistd --logger=netproto.journal.observer -n --pidfile= netproto --echo=7

Under systemd (``StandardOutput=journal``, the default, with
``SyslogLevelPrefix=yes``, also the default) ``journalctl -p warning`` then
shows the warnings and the critical bind failure, not every line at info.
"""

from __future__ import annotations

import sys
from typing import TextIO

from twisted.logger import ILogObserver, LogEvent, LogLevel, eventAsText
from zope.interface import implementer

__all__ = ["PRIORITIES", "JournalObserver", "observer"]

PRIORITIES: dict[LogLevel, int] = {
    LogLevel.debug: 7,
    LogLevel.info: 6,
    LogLevel.warn: 4,
    LogLevel.error: 3,
    LogLevel.critical: 2,
}
"""The syslog priority (``sd-daemon(3)``'s ``SD_*`` prefixes) of each log level."""


@implementer(ILogObserver)
class JournalObserver:
    """
    Writes each event to *out* as ``<N>[namespace#level] message``, one
    prefixed line per line of text (a traceback keeps the event's priority on
    every line), and flushes, so nothing waits in a buffer when the process
    dies.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: LogEvent) -> None:
        text = eventAsText(event, includeTimestamp=False, includeSystem=True)
        level = event.get("log_level", LogLevel.info)
        if event.get("isError") and level is LogLevel.info:
            level = LogLevel.error  # a legacy log.err() without a level
        prefix = f"<{PRIORITIES.get(level, 6)}>"
        lines = text.splitlines() or [""]
        try:
            self.out.write("".join(f"{prefix}{line}\n" for line in lines))
            self.out.flush()
        except (OSError, ValueError):
            pass  # the journal went away (closed pipe): nothing left to tell


def observer() -> JournalObserver:
    """
    The factory twistd's ``--logger`` calls: a :class:`JournalObserver` on
    the standard output twistd was started with (the journal under systemd).
    """
    return JournalObserver(sys.__stdout__ if sys.__stdout__ is not None else sys.stdout)
