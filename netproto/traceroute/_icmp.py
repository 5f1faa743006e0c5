"""
ICMP echo probes (:class:`IcmpProber`), sent and read through ping's
:class:`~netproto.ping.IcmpSocket`: a raw ICMP socket, or a Linux
unprivileged ping socket, chosen as ping chooses. Its
:class:`~netproto.ping.ProbeTable` does the matching, as strictly as for a
ping: identifier, sequence number, the quoted destination and the payload's
cookie for errors; identifier, sequence, source and cookie for replies.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from netproto.ping import DGRAM, ERROR, IcmpSocket, Packet, PingPermissionError, Probe
from netproto.traceroute._trace import Trace, TracePermissionError, TraceProbe
from netproto.traceroute._udp import PendingErrors, set_ttl

__all__ = ["IcmpProber"]

_ASYNCHRONOUS = (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNREFUSED, errno.EPROTO)
"""What a ping socket's send reports once when an ICMP error is pending on it."""
_ECHO_REPLY = {4: 0, 6: 129}


class IcmpProber:
    """
    Sends ICMP echo requests to *target* (IPv*version*) with increasing TTL
    and reads the answers: time exceeded from routers, an echo reply from the
    destination, unreachable errors.

    :raises TracePermissionError: no ICMP socket may be opened (the message
        says why and what to do, in one line).
    """

    method = "icmp"
    one_hop_at_a_time = False

    def __init__(
        self,
        reactor: Any,
        target: str,
        version: int,
        *,
        mode: str,
        source: str | None = None,
        interface: str | None = None,
        clock: Callable[[], float],
        wait: float,
    ) -> None:
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        try:
            self.socket = IcmpSocket(
                reactor, family, mode, source=source, interface=interface, clock=clock
            )
        except PingPermissionError as e:
            raise TracePermissionError(
                f"{e}; or trace with UDP probes (without -I), which need no privilege"
            ) from None
        self.target = target
        self.version = version
        self.mode = self.socket.mode
        self.wait = wait
        self._trace: Trace | None = None
        self._probes: dict[Probe, TraceProbe] = {}
        self._send_error: OSError | None = None
        self._pending = PendingErrors()
        self._ignored = 0

    def start(self, trace: Trace) -> None:
        """Read answers for *trace*."""
        self._trace = trace
        self.socket.start()

    def send(self, probe: TraceProbe) -> bool:
        """Send *probe* as an echo request; False when the kernel has no room now."""
        set_ttl(self.socket.socket, self.version, probe.ttl)
        request = Probe(self.target, probe.payload, self, probe.number)
        self._send_error = None
        # (No clearing of a pending error here: on a ping socket, the ICMP
        # socket reads its error queue when SO_ERROR says something is there.)
        # The ICMP socket's own timeout is longer than the trace's: the trace
        # decides when a probe is given up (reading the queues first), and an
        # answer read late must not find the request already expired there.
        if not self.socket.send(request, 2 * self.wait + 1.0):
            return False
        error = self._send_error
        if error is not None:
            if self._pending.again(error, _ASYNCHRONOUS):
                return False
            raise error
        self._pending.sent()
        probe.sent = request.sent
        self._probes[request] = probe
        # Read what has come back already, so that its round trip is not
        # charged with the time the next sends take (ping does the same); one
        # packet, the rest waits for the reactor.
        self.socket.drain(1)
        return True

    def forget(self, probe: TraceProbe) -> None:
        """Stop crediting answers to *probe*."""
        for request, waiting in list(self._probes.items()):
            if waiting is probe:
                del self._probes[request]

    def ignored(self) -> int:
        """Packets read that answered none of our probes."""
        table = self.socket.table
        return self._ignored + table.not_ours + table.malformed

    def drain(self) -> None:
        """Read every answer waiting now, the error queue of a ping socket included."""
        if self.mode == DGRAM:
            # How the reactor tells the ICMP socket that its error queue has
            # something: it reads both queues whatever SO_ERROR says.
            self.socket.readConnectionLost(Failure(ConnectionDone()))
        else:
            self.socket.drain()

    def close(self) -> None:
        """Stop reading and close the socket."""
        self.socket.close()

    # -- what the ICMP socket tells its probes' owner ------------------------

    def on_reply(self, request: Probe, ttl: int | None, size: int, now: float) -> None:
        """The destination's echo reply to one of our requests."""
        probe = self._probes.pop(request, None)
        if probe is None or self._trace is None:
            self._ignored += 1
            return
        self._trace.on_answer(probe, request.target, _ECHO_REPLY[self.version], 0, 0, now)

    def on_packet(self, verdict: str, request: Probe, packet: Packet, now: float) -> None:
        """Any other packet about one of our requests: errors count, the rest is ignored."""
        probe = self._probes.get(request)
        if verdict is not ERROR or probe is None or self._trace is None or packet.source is None:
            self._ignored += 1
            return
        del self._probes[request]
        self._trace.on_answer(probe, packet.source, packet.type, packet.code, 0, now)

    def on_expired(self, request: Probe) -> None:
        """The socket's own timeout for a request: the trace keeps its own."""
        self._probes.pop(request, None)

    def on_send_error(self, request: Probe, error: OSError) -> None:
        """A request could not be sent: :meth:`send` decides what to do."""
        self._send_error = error
