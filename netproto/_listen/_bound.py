"""
What every listener's service shares: it binds in ``privilegedStartService``
(before twistd drops privileges), reports a failed bind as one readable line
(:class:`BindError`), says what it serves, and closes in ``stopService``.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from twisted.application.service import Service
from twisted.internet import error

__all__ = ["BindError", "BoundService", "describe_bind_error", "has_ipv6"]


def has_ipv6() -> bool:
    """Whether this host can open IPv6 sockets (a kernel without IPv6 cannot)."""
    if not socket.has_ipv6:
        return False
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
    except OSError:
        return False
    return True


class BindError(Exception):
    """A listener could not bind; the message is one readable line."""


PRIVILEGED_PORT_REMEDY = (
    "start as root with twistd --uid/--gid, grant CAP_NET_BIND_SERVICE, or use socket activation"
)
"""What lets an unprivileged process serve a port below 1024, said with 'permission denied'."""


def describe_bind_error(exc: BaseException) -> str:
    """
    A short reason for a failed bind: 'address already in use', 'permission
    denied'... A port number refused for lack of privilege also says what
    fixes it (:data:`PRIVILEGED_PORT_REMEDY`), on the same line.
    """
    numbered = False
    if isinstance(exc, error.CannotListenError):
        numbered = isinstance(exc.port, int)
        exc = exc.socketError
    if isinstance(exc, OSError) and exc.errno is not None:
        reason = os.strerror(exc.errno).lower()
        if numbered and exc.errno in (errno.EACCES, errno.EPERM):
            reason += f" ({PRIVILEGED_PORT_REMEDY})"
        return reason
    return str(exc) or type(exc).__name__


class BoundService(Service):
    """
    A service that binds its socket in ``privilegedStartService`` (so twistd can
    drop privileges after it) and closes it in ``stopService``. Subclasses set
    ``_port`` when bound, or ``skipped`` when there is nothing to bind.
    """

    _port: Any = None
    #: True when there was nothing to bind (the IPv6 half on a host without IPv6).
    skipped = False
    #: The listener served (a :class:`~netproto._listen._listeners.Listener`):
    #: its option and description name it in messages.
    listener: Any = None

    @property
    def port(self) -> Any:
        """The listening port once bound."""
        return self._port

    def startService(self) -> None:
        """Start; bind first if ``privilegedStartService`` was not called (plain apps)."""
        if self._port is None and not self.skipped:
            self.privilegedStartService()
        Service.startService(self)

    def stopService(self) -> Any:
        """Stop listening; the Deferred fires when the socket is closed."""
        Service.stopService(self)
        port, self._port = self._port, None
        if port is None:
            return None
        return port.stopListening()

    def served(self) -> str:
        """What is served, for the start-up line: ``TCP port 7 (IPv4)``."""
        return str(self.listener.describe_bound(self.listening_port()))

    def listening_port(self) -> int | None:
        """The port number bound, once bound (``None`` for UNIX sockets)."""
        port = self.port
        if port is None:
            return None
        number = getattr(port.getHost(), "port", None)
        return number if isinstance(number, int) else None
