"""
The listen backlog of TCP listeners (``--listen-backlog``): how many
connections the kernel completes and queues before the service accepts them.
During a connection storm a short queue makes honest clients wait for SYN
retries (a second or more); a long one lets them in as soon as the service
catches up.
"""

from __future__ import annotations

import re

__all__ = ["SOMAXCONN_PATH", "effective_backlog", "system_maximum", "with_backlog"]

SOMAXCONN_PATH = "/proc/sys/net/core/somaxconn"
"""Where Linux says the largest backlog it grants (``net.core.somaxconn``)."""

_FALLBACK_MAX = 4096
"""The kernel's default somaxconn since Linux 5.4, for systems that do not say."""

_WITH_BACKLOG = ("tcp", "tcp6", "ssl", "unix")
"""Endpoint types whose descriptions take ``backlog=``."""

_BACKLOG = re.compile(r"(?<!\\):backlog=")


def system_maximum(path: str = SOMAXCONN_PATH) -> int:
    """The largest backlog the kernel grants (it silently clamps larger ones)."""
    try:
        with open(path) as f:
            value = int(f.read().strip())
    except (OSError, ValueError):
        return _FALLBACK_MAX
    return value if value > 0 else _FALLBACK_MAX


def effective_backlog(requested: int, maximum: int | None = None) -> int:
    """*requested* clamped to the system's maximum; 0 asks for that maximum."""
    top = system_maximum() if maximum is None else maximum
    return top if requested <= 0 else min(requested, top)


def with_backlog(description: str, backlog: int) -> str:
    """
    *description* (a Twisted server endpoint) with ``backlog=N`` added when
    it is a ``tcp:``, ``tcp6:``, ``ssl:`` or ``unix:`` endpoint that does not
    name a backlog of its own; any other description unchanged.
    """
    kind, colon, _ = description.partition(":")
    if kind not in _WITH_BACKLOG or not colon or _BACKLOG.search(description):
        return description
    return f"{description}:backlog={backlog}"
