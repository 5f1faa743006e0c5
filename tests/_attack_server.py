"""
A service under attack in a process of its own, for the tests of
``test_tap_attacks_live.py``: what it measures about itself (descriptors,
log lines) is not blurred by the test's own sockets.

``python -m tests._attack_server fds CAP N``: echo on 127.0.0.1 with
``max_connections=CAP`` and a backlog of 1024; prints ``PORT p``, then, once
*N* connections were handed to the factory, ``PEAK extra`` (the most
descriptors open at an accept, above those open before the first) and exits.
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


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "fds":
        fds(int(args[0]), int(args[1]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
