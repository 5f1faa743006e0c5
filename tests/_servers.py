"""Shared helpers for the real-socket tests of the daytime and echo services."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater

reactor: Any = _reactor


def has_ipv6() -> bool:
    """Whether ::1 can be bound here."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6_SKIP = None if has_ipv6() else "no IPv6 loopback"


def closed_port(kind: int) -> int:
    """A loopback port (TCP or UDP per *kind*) that nothing listens on, most likely."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the peer closed or reset *sock* (without blocking, and reading nothing else)."""
    try:
        return sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


async def sleep(seconds: float) -> None:
    """Let the reactor run for *seconds*."""
    await deferLater(reactor, seconds, lambda: None)


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll *condition* every 10 ms; fail the test's Deferred after *timeout* seconds."""
    waited = 0.0
    while not condition():
        if waited >= timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await sleep(0.01)
        waited += 0.01


def deferred(coroutine: Any) -> Deferred[Any]:
    """A Deferred for a coroutine (trial awaits Deferreds)."""
    return ensureDeferred(coroutine)
