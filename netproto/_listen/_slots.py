"""
The sockets of ``twistd netproto --workers N``, and which worker serves which.

An inet TCP listener (``tcp:``, ``tcp6:``, a bare port) is a *group* of N
listening sockets on the same address, one per worker slot, each with
``SO_REUSEPORT`` set before its bind: the kernel hashes every new connection
(its addresses and ports) to one socket of the group, so the connections
spread evenly over the workers whatever the scheduler does, and only the
worker of that socket is woken for it. The supervisor binds the first socket
of a group through the listener's own endpoint (so every endpoint option and
every bind error is as without workers) and the others beside it with
:func:`reuse_port_group`, all before ``--uid``/``--gid`` take effect, and holds
all of them: a dead worker's socket, and the connections queued on it, wait
for its successor. Every other socket (UDP, ``unix:``, ``systemd:``) is one
socket that every worker serves.

Linux admits a socket into a group only if it was created by the same
effective uid as the group's first: the sockets are root's when twistd starts
as root, so a process of the ``--uid`` user (a worker, or anything else of
that user) cannot bind into the group and take a share of the connections.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Slots", "reuse_port_group", "reuses_port"]


def reuses_port(fileno: int) -> bool:
    """Whether the socket *fileno* has ``SO_REUSEPORT`` set (the first of a group)."""
    probe = socket.socket(fileno=fileno)
    try:
        return bool(probe.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))
    except OSError:
        return False
    finally:
        probe.detach()


def reuse_port_group(fileno: int, more: int, backlog: int) -> list[socket.socket]:
    """
    *more* listening sockets bound to the address of the listening socket
    *fileno* (same family, same ``IPV6_V6ONLY``), ``SO_REUSEPORT`` set before
    each bind, listening with *backlog*: with *fileno*, one reuse-port group.

    :raises OSError: if one cannot be bound (the ones bound are closed).
    """
    first = socket.socket(fileno=fileno)
    try:
        family = first.family
        address = first.getsockname()
        v6only = (
            first.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
            if family == socket.AF_INET6
            else None
        )
    finally:
        first.detach()
    made: list[socket.socket] = []
    try:
        for _ in range(more):
            sock = socket.socket(family, socket.SOCK_STREAM)
            made.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if v6only is not None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in made:
            sock.close()
        raise
    return made


@dataclass(frozen=True)
class Slots:
    """
    Where every socket sits in a worker (descriptors *first*, *first* + 1, ...,
    the same in every worker and in the standby, which inherits them all), and
    which of them worker *w* serves: the one socket of a shared listener, the
    *w*-th of a group.
    """

    groups: Sequence[int]
    """For each listener, how many sockets it has: 1 (shared) or the number of workers."""
    first: int = 3

    def positions(self, listener: int) -> range:
        """The descriptors, in a worker, of listener *listener*'s sockets."""
        start = self.first + sum(self.groups[:listener])
        return range(start, start + self.groups[listener])

    def served(self, listener: int, worker: int) -> int:
        """The descriptor worker *worker* (1 to N) serves listener *listener* on."""
        positions = self.positions(listener)
        return positions[0] if len(positions) == 1 else positions[worker - 1]

    def unused(self, worker: int) -> tuple[int, ...]:
        """The descriptors of the other workers' sockets: worker *worker* closes them."""
        return tuple(
            fd
            for listener in range(len(self.groups))
            for fd in self.positions(listener)
            if fd != self.served(listener, worker)
        )
