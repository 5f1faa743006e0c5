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
_FIELDS = struct.Struct("!HH10s12s")
"""A request from its byte 2: checksum, identifier, MAC (sequence number and proof), body."""


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
    k = slots = size = 0
    if batch is not None:
        data_area, names, size, slots = batch.data, batch.names, batch.size, batch.slots
        xs, steps = batch.xs, batch.steps
    if stamper4 is not None:
        mac4, tail4, fixed4 = stamper4._mac.copy, stamper4.tail, stamper4.fixed_sum
        ident4 = stamper4.ident
    ntop = socket.inet_ntop
    inet = socket.AF_INET
    from_bytes = int.from_bytes
    pack_body, pack_header, pack_fields = _BODY.pack, _HEADER.pack, _FIELDS.pack_into
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
            if batch is not None:
                if not k:
                    # A batch goes out in one call, at one time: its probes
                    # share the send time, so the body and the MAC's start.
                    body = pack_body(number, clock())
                    started = mac4()
                    started.update(body)
                    copy = started.copy
                    fixed = fixed4 + from_bytes(body, "big")
                mac = copy()
                mac.update(packed)
                digest = mac.digest()
                checksum = 0xFFFF - ((fixed + from_bytes(digest, "big")) % 0xFFFF or 0xFFFF)
                # Into the batch's slot: checksum, identifier, the ten MAC
                # bytes (sequence number and proof), number and send time.
                pack_fields(data_area, k * size + 2, checksum, ident4, digest, body)
                names[k * 16 + 4 : k * 16 + 8] = packed
                xs[k] = current
                steps[k] = step - 1
                k += 1
                sent += 1
                if k == slots:
                    unsent = _flush(sweep, batch, k, number)
                    k = 0
                    if unsent:
                        x, step = xs[slots - unsent], steps[slots - unsent]
                        sent -= unsent
                        blocked = True
                        break
                continue
            body = pack_body(number, clock())
            mac = mac4()
            mac.update(body + packed)
            digest = mac.digest()
            checksum = 0xFFFF - ((fixed4 + from_bytes(digest + body, "big")) % 0xFFFF or 0xFFFF)
            seq = digest[0] << 8 | digest[1]
            data = pack_header(8, 0, checksum, ident4, seq) + digest[2:] + body + tail4
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
    if k:
        unsent = _flush(sweep, batch, k, number)
        if unsent:
            x, step = xs[k - unsent], steps[k - unsent]
            sent -= unsent
            blocked = True
    window.steps = step - window.start
    sweep._x, sweep._step = x, step
    sweep.transmitted += sent
    if first_pass:
        sweep.covered += sent
    return blocked


def _flush(sweep: Any, batch: Any, count: int, number: int) -> int:
    """Send the batch's first *count* slots, report those failed for good; return how many wait."""
    done, failed = batch.flush(count)
    for slot, code in failed:
        sweep._error(batch.xs[slot] - 1, number, os.strerror(code))
    unsent: int = count - done
    return unsent
