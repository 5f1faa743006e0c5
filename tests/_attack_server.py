"""
A service under attack in a process of its own, for the tests of
``test_tap_attacks_live.py``: what it measures about itself (descriptors,
log lines) is not blurred by the test's own sockets.

``python -m tests._attack_server fds CAP N``: echo on 127.0.0.1 with
``max_connections=CAP`` and a backlog of 1024; prints ``PORT p``, then, once
*N* connections were handed to the factory, ``PEAK extra`` (the most
descriptors open at an accept, above those open before the first) and exits.

``python -m tests._attack_server emfile``: the plugin's echo service on
127.0.0.1 in a process whose descriptors are all taken; prints ``PORT p``.
Once accepts have failed 5 times it frees the descriptors, so waiting
connections can be served. On a line on stdin it prints ``ERRORS n`` (the
``tcp_accept_errors`` counter), ``LINES k`` (log events about descriptors or
accepts) and exits.

``python -m tests._attack_server prefix`` (inside ``unshare -n``, as root):
puts ten addresses of one IPv6 /64 and one of another on ``lo``, serves echo
with ``max_connections_per_peer=4`` on ``::``, connects once from each, and
prints ``ADMITTED a REFUSED r OTHER o`` (o: the other /64's one admitted).
"""

from __future__ import annotations

import os
import sys
from typing import Any


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fds(cap: int, total: int) -> None:
    """Serve echo with *cap* connections at most; report the peak fd count over *total*."""
    from twisted.internet import reactor as _reactor

    from netproto.echo import EchoFactory
    from netproto.limits import Limits

    reactor: Any = _reactor

    class Measured(EchoFactory):
        seen = 0
        peak = 0

        def buildProtocol(self, addr: Any) -> Any:
            self.peak = max(self.peak, _open_fds())
            self.seen += 1
            if self.seen == total:
                reactor.callLater(0, done)
            return super().buildProtocol(addr)

    factory = Measured(reactor, Limits(max_connections=cap, max_connections_per_peer=0))
    port = reactor.listenTCP(0, factory, backlog=1024, interface="127.0.0.1")
    base = 0

    def ready() -> None:
        # Counted once the reactor runs: it opens a few descriptors of its own.
        nonlocal base
        base = _open_fds()
        print(f"PORT {port.getHost().port}", flush=True)

    def done() -> None:
        print(f"PEAK {factory.peak - base}", flush=True)
        reactor.stop()

    reactor.callWhenRunning(ready)
    reactor.run()


def emfile() -> None:
    """Serve echo out of descriptors until 5 accepts failed; then report the log."""
    import resource

    from twisted.internet import reactor as _reactor
    from twisted.internet import stdio
    from twisted.internet.task import LoopingCall
    from twisted.logger import formatEvent, globalLogPublisher
    from twisted.protocols.basic import LineReceiver

    from netproto.tap import Options, makeService

    reactor: Any = _reactor
    about: list[str] = []

    def collect(event: dict[str, Any]) -> None:
        text = formatEvent(event)
        if any(word in text for word in ("EMFILE", "accept", "descriptor")):
            about.append(text)

    globalLogPublisher.addObserver(collect)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = min(soft, 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    config = Options()
    config.parseOptions(["--echo=tcp:0:interface=127.0.0.1", "--max-connections=0"])
    service: Any = makeService(config, reactor)
    service.privilegedStartService()
    service.startService()
    (child,) = list(service)
    counters = child.factory.counters
    fillers: list[int] = []

    class Commands(LineReceiver):
        delimiter = b"\n"

        def lineReceived(self, line: bytes) -> None:
            print(f"ERRORS {counters.get('tcp_accept_errors')}", flush=True)
            print(f"LINES {len(about)}", flush=True)
            for text in about:
                print(f"# {text}", flush=True)
            reactor.stop()

    def fill() -> None:
        stdio.StandardIO(Commands())
        while True:
            try:
                fillers.append(os.open("/dev/null", os.O_RDONLY))
            except OSError:
                break
        print(f"PORT {child.listening_port()}", flush=True)

    def free_when_tried() -> None:
        if counters.get("tcp_accept_errors") >= 5 and fillers:
            for fd in fillers:
                os.close(fd)
            fillers.clear()

    LoopingCall(free_when_tried).start(0.05)
    reactor.callWhenRunning(fill)
    reactor.run()


def prefix() -> None:
    """Connections from ten addresses of one /64, and one from another, against a cap of 4."""
    import socket
    import subprocess

    from twisted.internet import reactor as _reactor
    from twisted.internet.task import LoopingCall

    from netproto.echo import EchoFactory
    from netproto.limits import Limits

    reactor: Any = _reactor
    ours = [f"2001:db8:0:7::{i:x}" for i in range(1, 11)]
    other = "2001:db8:0:8::1"
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in [*ours, other]:
        subprocess.run(
            ["ip", "-6", "addr", "add", f"{address}/64", "dev", "lo", "nodad"], check=True
        )
    factory = EchoFactory(reactor, Limits(max_connections_per_peer=4))
    port = reactor.listenTCP(0, factory, interface="::")
    number = port.getHost().port
    clients = []
    for address in [*ours, other]:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind((address, 0))
        s.connect((ours[0], number))
        clients.append(s)

    def check() -> None:
        values = factory.counters.values
        if values["tcp_connections"] + values["tcp_refused_peer"] < len(clients):
            return
        other_key = "2001:db8:0:8::/64"
        print(
            f"ADMITTED {values['tcp_connections']} REFUSED {values['tcp_refused_peer']} "
            f"OTHER {factory.limiter.by_peer.get(other_key, 0)}",
            flush=True,
        )
        reactor.stop()

    LoopingCall(check).start(0.05)
    reactor.run()


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "fds":
        fds(int(args[0]), int(args[1]))
    elif mode == "emfile":
        emfile()
    elif mode == "prefix":
        prefix()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
