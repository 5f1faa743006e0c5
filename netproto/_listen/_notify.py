"""
The service manager's readiness protocol (``sd_notify(3)``): one datagram of
``KEY=VALUE`` lines to the unix socket named by ``$NOTIFY_SOCKET``, so a
``Type=notify`` unit is started only once every socket is bound.

Written here rather than taken from a library: it is one ``sendto``, and
the only dependency-free packages for it do the same few lines.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

__all__ = ["NOTIFY_SOCKET", "notify", "status_text"]

NOTIFY_SOCKET = "NOTIFY_SOCKET"
"""The environment variable naming the service manager's socket."""

_STATUS_MAX = 400
"""A ``STATUS=`` line longer than this is cut: ``systemctl status`` shows one line."""


def notify(fields: Mapping[str, str], environ: Mapping[str, str] | None = None) -> bool:
    """
    Send *fields* (``{"READY": "1", "STATUS": "..."}``) to the socket named
    by ``$NOTIFY_SOCKET`` in *environ* (``os.environ`` by default): a path,
    or ``@name`` for an abstract socket. True if sent; False when there is no
    such socket (not run by a service manager) or sending failed, which a
    service survives: readiness is advice, not a reason to stop serving.
    """
    where = (os.environ if environ is None else environ).get(NOTIFY_SOCKET, "")
    if not where or where[0] not in "/@":
        return False
    address = "\0" + where[1:] if where[0] == "@" else where
    lines = []
    for key, value in fields.items():
        lines.append(f"{key}={value.replace(chr(10), ' ')}")
    payload = "\n".join(lines).encode("utf-8", "replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(payload, address)
    except OSError:
        return False
    return True


def status_text(served: list[str]) -> str:
    """``STATUS=`` for *served* (``echo on TCP port 7 (IPv4)``, ...), one line."""
    text = "serving " + "; ".join(served) if served else "serving nothing"
    return text if len(text) <= _STATUS_MAX else text[: _STATUS_MAX - 3] + "..."
