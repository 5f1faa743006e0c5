"""
The hot loop of a sweep: walk the permutation, stamp each probe with its
proof and send it, a batch at a time (``sendmmsg`` where the kernel has it,
else one ``sendto`` each). A window of the walk is left behind for the
sweep to replay when its wait is over.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Any

__all__ = ["send_run"]

_BLOCKED = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS)
_V6 = 1 << 129
_BODY = struct.Struct("!Id")
_HEADER = struct.Struct("!BBHHH")


def send_run(sweep: Any, window: Any, budget: int) -> bool:
    """
    Send up to *budget* probes of *sweep* from where its walk is, recording
    the steps taken in *window*; True if the kernel pushed back (the walk
    then stands at the first probe not sent).
    """
    x, step, end = sweep._x, sweep._step, sweep._positions
    mul, p, n = sweep._mul, sweep._prime, sweep._n
    number = sweep._pass
    skip_answered = number > 0 and not sweep._rounds
    bits = sweep._bits
    single = sweep._single
    space = sweep.targets
    clock = sweep.clock
    first_pass = number == 0
    blocked = False
    sent = 0
    stamper4 = sweep._stampers.get(4)
    sock4 = sweep._socks.get(4)
    sendto4 = sock4.socket.sendto if sock4 is not None else None
    batch = sweep._batch
    queued: list[tuple[int, int, int]] = []
    if stamper4 is not None:
        mac4, tail4, fixed4 = stamper4._mac.copy, stamper4.tail, stamper4.fixed_sum
        ident4 = stamper4.ident
    ntop = socket.inet_ntop
    inet = socket.AF_INET
    pack_body, pack_header = _BODY.pack, _HEADER.pack
    while sent < budget and step < end:
        current = x
        x = x * mul % p
        step += 1
        if current > n:
            continue
        index = current - 1
        if skip_answered and bits[index >> 3] >> (index & 7) & 1:
            continue
        key = single + index if single is not None else space.key(index)
        if key < _V6 and sendto4 is not None:
            # Stamper.request, inlined: this loop is the sweep's hot path.
            packed = key.to_bytes(4, "big")
            body = pack_body(number, clock())
            mac = mac4()
            mac.update(packed + body)
            digest = mac.digest()
            proof = digest[:8] + body
            total = fixed4 + int.from_bytes(digest[8:10] + proof, "big")
            checksum = 0xFFFF - (total % 0xFFFF or 0xFFFF)
            data = pack_header(8, 0, checksum, ident4, digest[8] << 8 | digest[9]) + proof + tail4
            if batch is not None:
                queued.append((current, step - 1, index))
                sent += 1
                if batch.add(data, packed):
                    unsent = _flush(sweep, batch, queued, number)
                    if unsent:
                        x, step = queued[-unsent][0], queued[-unsent][1]
                        sent -= unsent
                        blocked = True
                        queued.clear()
                        break
                    queued.clear()
                continue
            try:
                sendto4(data, (ntop(inet, packed), 0))
            except OSError as e:
                if e.errno in _BLOCKED:
                    x, step, blocked = current, step - 1, True
                    break
                sweep._error(index, number, e.strerror or str(e))
        else:
            packed = (key - _V6).to_bytes(16, "big")
            data = sweep._stampers[6].request(packed, number, clock())
            try:
                sweep._socks[6].socket.sendto(data, (ntop(socket.AF_INET6, packed), 0))
            except OSError as e:
                if e.errno in _BLOCKED:
                    x, step, blocked = current, step - 1, True
                    break
                sweep._error(index, number, e.strerror or str(e))
        sent += 1
    if queued:
        unsent = _flush(sweep, batch, queued, number)
        if unsent:
            x, step = queued[-unsent][0], queued[-unsent][1]
            sent -= unsent
            blocked = True
    window.steps = step - window.start
    sweep._x, sweep._step = x, step
    sweep.transmitted += sent
    if first_pass:
        sweep.covered += sent
    return blocked


def _flush(sweep: Any, batch: Any, queued: list[tuple[int, int, int]], number: int) -> int:
    """Send the batch; report the probes that failed for good; return how many were not sent."""
    done, failed = batch.flush()
    for slot, code in failed:
        sweep._error(queued[slot][2], number, os.strerror(code))
    unsent: int = len(queued) - done
    return unsent
