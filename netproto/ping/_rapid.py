"""
Back-to-back probes of one :class:`~netproto.ping.Ping` on a raw IPv4
socket (``-i 0``), as iputils sends them: the next probe leaves as soon as
the reply to the last one is matched, or after 10 ms without it, with no
turn of the reactor and no timer in between.

Sending, reading and crediting happen in one loop. Each request is built
from a template: the payload's tail and the identifier are summed once, so
a probe's checksum is that constant, its sequence number and its cookie
(RFC 1624's incremental update, in its modulo-0xffff form). The first packet
read after a send is credited at once only if it is, byte for byte, the
reply that probe asks for (type 0, same identifier, sequence number,
cookie and payload, the checksum that goes with them) in a plain IPv4 header
from the target. Anything else makes the probe a waiting one of the socket's
table and goes the ordinary way (:meth:`ProbeTable.fast_reply`, else the
general parser and :meth:`ProbeTable.classify`), so matching is as strict as
there: duplicates and late replies told apart, forged, foreign and damaged
packets never credited.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

from netproto.ping._dispatch import take_raw4
from netproto.ping._probes import PENDING, Probe, TableFullError

__all__ = ["NO_REPLY_WAIT", "TURN", "RapidSender", "rapid_sender"]

NO_REPLY_WAIT = 0.01
"""Seconds to wait for a reply before the next probe goes anyway (iputils' -i 0)."""
TURN = 1024
"""Probes sent between two turns of the reactor (signals, deadlines, other work)."""
_RETRY = 0.001
"""Seconds before trying again when the kernel or the table has no room."""
_POOL = 4096
"""Cookies drawn from the system's random source at once."""

_pack_header = struct.Struct("!BBHHH").pack
# Of an IPv4 packet with an echo reply in it: version and IHL, total length,
# flags and fragment offset, protocol, source; then the ICMP type and code
# (one word), checksum, identifier, sequence number.
_reply_head = struct.Struct("!BxHxxHxB2x4s4xHHHH").unpack_from


def rapid_sender(ping: Any) -> RapidSender | None:
    """
    A :class:`RapidSender` for *ping*, or None when its socket is not raw
    IPv4. (Never for a ping with ``outstanding``: this loop does not keep
    its last probe for that report.)
    """
    sock = ping.socket
    if not getattr(sock, "_raw4", False):
        return None
    return RapidSender(ping, sock)


class RapidSender:
    """
    The sending loop of one ping at interval 0 on a raw IPv4
    :class:`~netproto.ping.IcmpSocket`. :meth:`run` sends until the ping has
    sent its count, the reply of its last probe is not there yet (then that
    reply, or 10 ms, resumes it), or :data:`TURN` probes went (then the next
    turn of the reactor does).
    """

    def __init__(self, ping: Any, sock: Any) -> None:
        self.ping = ping
        self.socket = sock
        payloads = ping._payloads
        self._cookie_size = payloads.cookie_size
        self._tail = tail = payloads.tail
        size = self._cookie_size + len(tail)
        odd = size & 1
        # RFC 1071 sums 16-bit words; modulo 0xffff a word sum is the big
        # integer of the bytes (2**16 = 1), with a last odd byte shifted up.
        self._tail_sum = (int.from_bytes(tail, "big") << (8 * odd)) % 0xFFFF
        self._cookie_scale = pow(2, 8 * (len(tail) + odd), 0xFFFF)
        self._pool = b""
        self._at = 0
        self._address = (ping.target, 0)
        self._packed = socket.inet_pton(socket.AF_INET, ping.target)
        self._running = False
        self.waiting = False
        """True while the loop waits for the reply of its last probe (or 10 ms)."""
        largest = size + 8
        if largest > sock._largest:
            sock._largest = largest
            sock._bufsize = max(sock._bufsize, largest + 1024)

    def resume(self) -> None:
        """The reply the loop waited for came: send on at once."""
        ping = self.ping
        call = ping._next_call
        if call is not None and call.active():
            call.cancel()
        ping._next_call = None
        self.run()

    def run(self) -> None:
        """Send probes back to back (see the class); re-entering is a no-op."""
        if self._running:
            return
        self._running = True
        try:
            self._loop()
        finally:
            self._running = False
            sock = self.socket
            if not sock._closed and not sock.table.pending:
                # Keep no answered probes in the deadline queues.
                sock.table.forget_deadlines()

    def _cookies(self) -> bytes:
        self._pool = os.urandom(max(self._cookie_size, 1) * _POOL)
        return self._pool

    def _loop(self) -> None:
        ping = self.ping
        sock = self.socket
        reactor = ping.reactor
        ping._next_call = None
        self.waiting = False
        stats = ping.statistics
        table = sock.table
        ident = table.ident
        # The checksum's constant part: type 8, identifier and the payload's tail.
        base = 0x0800 + ident + self._tail_sum
        scale = self._cookie_scale
        tail = self._tail
        n = self._cookie_size
        target = ping.target
        packed = self._packed
        address = self._address
        timeout = ping.timeout
        count = ping.count
        by_received = ping.deadline is not None
        clock = sock.clock
        sendto = sock._sendto
        recv = sock.socket.recv
        bufsize = sock._bufsize
        fast = table.fast_reply
        add = table.add
        add_answered = table.add_answered
        next_seq = table.next_seq
        probes_get = table._probes.get
        rtts = stats.rtts
        report = ping._report
        on_reply = ping.on_reply
        pack = _pack_header
        reply_head = _reply_head
        size = 28 + n + len(tail)
        from_bytes = int.from_bytes
        pool = self._pool
        if ping._finished or sock._closed:
            return
        # Only what reaches the ping (on_reply, on_send_error, the general
        # path) can stop it or close the socket: each is followed by a check.
        for _ in range(TURN):
            if count is not None:
                if (stats.received if by_received else stats.transmitted) >= count:
                    ping._check_done()
                    return
            # table.next_seq(), its common case inlined.
            seq = table._next
            old = probes_get(seq)
            if (old is not None and old.state is PENDING) or table.pending >= 0x10000:
                try:
                    seq = next_seq()
                except TableFullError:
                    ping._next_call = reactor.callLater(_RETRY, ping._send)
                    return
            at = self._at
            if at + n > len(pool):
                pool = self._cookies()
                at = 0
            self._at = end = at + n
            cookie = pool[at:end]
            payload = cookie + tail
            words = base + seq + from_bytes(cookie, "big") * scale
            request = pack(8, 0, 0xFFFF - (words % 0xFFFF or 0xFFFF), ident, seq) + payload
            sent = clock()
            try:
                sendto(request, address)
            except OSError as e:
                if sock.blocked(e):
                    ping._next_call = reactor.callLater(_RETRY, ping._send)
                    return
                sock.send_errors += 1
                probe = Probe(target, payload, ping, stats.transmitted + 1)
                probe.packed = packed
                stats.transmitted += 1
                ping._waiting += 1
                ping.on_send_error(probe, e)
                ping._next_call = reactor.callLater(0, ping._send)
                return
            stats.transmitted += 1
            number = stats.transmitted
            # The probe joins the table as answered if its reply is the first
            # packet read, else as waiting before anything else is looked at.
            data: bytes | None
            try:
                data = recv(bufsize)
            except OSError:
                data = None
            now = sent
            if data is not None:
                now = clock()
                if len(data) == size:
                    first, length, fragment, protocol, source, kind, total, rid, rseq = reply_head(
                        data
                    )
                    words -= 0x0800  # the reply's sum: type 0 instead of 8, all else alike
                else:
                    kind = -1
                # Byte for byte the reply this probe asks for (type 0, code 0, its
                # identifier, sequence number and payload, the checksum that goes
                # with them), from its target, in a plain IPv4 header (IHL 5,
                # unfragmented, exact length)?
                if (
                    kind == 0
                    and rseq == seq
                    and rid == ident
                    and total == 0xFFFF - (words % 0xFFFF or 0xFFFF)
                    and source == packed
                    and first == 0x45
                    and protocol == 1
                    and length == size
                    and not fragment & 0x3FFF
                    and data.endswith(payload)
                ):
                    probe = add_answered(target, packed, payload, ping, number, seq, sent, now)
                    if report:
                        ping._waiting += 1
                        on_reply(probe, data[8], size - 20, now)
                        if ping._finished or sock._closed:
                            return
                    else:
                        # Ping.on_reply's work when no result is taken.
                        stats.received += 1
                        rtts.append(now - sent)
                    continue
            probe = Probe(target, payload, ping, number)
            probe.packed = packed
            ping._waiting += 1
            add(probe, seq, sent, timeout)
            if sock._timer is None:
                sock.watch(probe.deadline, sent)
            # Read until this probe is answered: anything read on the way (a
            # duplicate, an error, another pinger's reply) goes the socket's
            # ordinary way.
            while probe.state is PENDING:
                if data is None:
                    try:
                        data = recv(bufsize)
                    except BlockingIOError:
                        self.waiting = True
                        ping._next_call = reactor.callLater(NO_REPLY_WAIT, ping._send)
                        return
                    except OSError:
                        ping._next_call = reactor.callLater(NO_REPLY_WAIT, ping._send)
                        return
                    now = clock()
                answered = fast(data, now) if table.pending else None
                if answered is not None:
                    answered.owner.on_reply(answered, data[8], len(data) - 20, now)
                else:
                    take_raw4(sock, data, now)
                data = None
                if ping._finished or sock._closed:
                    return
        ping._next_call = reactor.callLater(0, ping._send)
