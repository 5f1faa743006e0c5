"""
The one module that touches Twisted's private names.

netproto's fast paths and its socket adoption need a few things Twisted has
no public API for. They all live here, each behind a function that checks the
name is still there and falls back to public API (slower or plainer, never
broken) when a Twisted release removes it. :data:`PRIVATE_NAMES` lists every
one; ``tests/test_twisted_seam.py`` is the canary that fails loudly when a
Twisted release changes any of them. Nothing else in netproto may use a
private name of Twisted's.

Tested with Twisted :data:`TESTED` (oldest and newest release CI runs).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet import main, tcp, udp
from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionAborted
from twisted.internet.protocol import DatagramProtocol, connectionDone
from twisted.python import log as legacy_log
from twisted.python.failure import Failure
from twisted.python.systemd import ListenFDs

import twisted

__all__ = [
    "PRIVATE_NAMES",
    "TESTED",
    "abort_now",
    "accept_directly",
    "adopt_datagram_port",
    "direct_writer",
    "echo_directly",
    "fast_dispatch",
    "guard_accepts",
    "inherited_sockets",
    "queued_bytes",
    "write_and_close",
]

TESTED = ((23, 10), (26, 10))
"""The oldest and newest Twisted (major, minor) netproto's CI runs against."""

PRIVATE_NAMES: dict[str, str] = {
    "twisted.internet.abstract.FileDescriptor._tempDataLen": (
        "bytes written but not yet joined into dataBuffer: counted in queued_bytes and "
        "checked by direct_writer"
    ),
    "twisted.internet.udp.Port._fromListeningDescriptor": (
        "adopt an inherited datagram socket into our own udp.Port subclass"
    ),
    "twisted.internet.endpoints._SystemdParser._sddaemon": (
        "the LISTEN_FDS Twisted read (and removed from the environment) at import"
    ),
    "twisted.internet.epollreactor.EPollReactor._poller": (
        "the reactor's epoll object, polled by fast_dispatch"
    ),
    "twisted.internet.epollreactor.EPollReactor._selectables": (
        "descriptor number -> reader/writer, looked up by fast_dispatch"
    ),
    "twisted.internet.posixbase.PosixReactorBase._doReadOrWrite": (
        "the reactor's handling of one event, called by fast_dispatch"
    ),
    "twisted.internet.posixbase.PosixReactorBase._disconnectSelectable": (
        "what the reactor does with doRead's reason to stop, called by fast_dispatch"
    ),
    "twisted.internet.base.ReactorBase._started": (
        "whether the main loop should go on, read by fast_dispatch's main loop"
    ),
    "twisted.internet.base.ReactorBase._justStopped": (
        "stop() was called and shutdown not yet fired: fast_dispatch's main loop returns "
        "to runUntilCurrent"
    ),
    "twisted.internet.base.ReactorBase._newTimedCalls": (
        "callLater calls not yet in the heap: fast_dispatch's main loop returns to runUntilCurrent"
    ),
    "twisted.internet.base.ReactorBase._pendingTimedCalls": (
        "the heap of timed calls, whose first is the next due: fast_dispatch's main loop "
        "polls until then"
    ),
}
"""Every private name of Twisted's used here, with what it is used for."""

VERSION = tuple(int(part) for part in twisted.__version__.split(".")[:2])
"""The running Twisted's (major, minor)."""


def queued_bytes(transport: object) -> int | None:
    """
    Bytes queued in *transport* for the peer and not yet sent, or ``None`` for
    a transport that does not say (TLS, or a Twisted without the counter).
    """
    t: Any = transport
    try:
        return int(len(t.dataBuffer) - t.offset + t._tempDataLen)
    except (AttributeError, TypeError):
        return None


def direct_writer(transport: object) -> Callable[[bytes], None] | None:
    """
    For Twisted's own socket transports (TCP, UNIX): a ``write`` that sends at
    once when nothing is queued, instead of queueing and waiting for the next
    reactor turn (two ``epoll_ctl`` calls and a loop iteration saved per
    write). What the kernel does not take goes through ``transport.write``,
    so order, flow control and error handling stay Twisted's. ``None`` for any
    other transport: use ``transport.write``.
    """
    if not (
        isinstance(transport, FileDescriptor)
        and hasattr(transport, "socket")
        and hasattr(transport, "_tempDataLen")
    ):
        return None
    fd: Any = transport
    send = fd.socket.send
    write = fd.write

    def write_now(data: bytes) -> None:
        if fd.dataBuffer or fd._tempDataLen:
            write(data)
            return
        try:
            sent = send(data)
        except OSError:  # EAGAIN, or an error the transport will report itself
            sent = 0
        if sent < len(data):
            write(data[sent:] if sent else data)

    return write_now


def echo_directly(
    transport: object, protocol: Any, large: int = 0, budget: Any = None
) -> Callable[[], None] | None:
    """
    On Twisted's own TCP server transport: read and echo in one call. The
    reactor's ``doRead`` of *transport* becomes one function that receives,
    adds the byte count to ``protocol._rx``, dates the read in
    ``protocol._read_at`` (from ``protocol._seconds()``) and sends the bytes
    straight back when nothing is queued (what the kernel does not take, or
    everything while something is queued, goes through ``transport.write``,
    so order, flow control and error handling stay Twisted's): Twisted's
    ``doRead`` and ``_dataReceived``, the protocol's ``dataReceived`` and the
    writer, four Python calls per read, become one. End of file and receive
    errors go back to the reactor as Twisted's ``doRead`` returns them.

    A read takes *large* bytes (at least ``transport.bufferSize``) while
    nothing is queued for this peer and *budget* (an object with a ``used``
    byte count, if given: what paused peers hold) is 0, else ``bufferSize``
    bytes. The transport still pauses the protocol once more than
    ``bufferSize`` bytes are queued, so a peer that does not read holds at
    most one large read (or two of ``bufferSize``), and once the budget holds
    anything, every peer reads ``bufferSize`` at a time.

    Returns the function that puts Twisted's ``doRead`` back (call it when
    the connection is lost, to break the reference cycle), or ``None`` for
    any other transport (nothing changed: use ``dataReceived``).
    """
    if type(transport) is not tcp.Server or not hasattr(transport, "_tempDataLen"):
        return None
    t: Any = transport
    recv_into = t.socket.recv_into
    send = t.socket.send
    write = t.write
    size = t.bufferSize
    large = max(large, size)
    view = _read_buffer(large)
    again = (errno.EWOULDBLOCK, errno.EAGAIN)
    seconds = protocol._seconds
    calm: Any = budget if budget is not None else _Calm()

    def do_read() -> object:
        # Into the shared buffer (no allocation per read): out at once when
        # nothing is queued; only what the kernel does not take becomes bytes.
        queued = t.dataBuffer or t._tempDataLen
        try:
            got = recv_into(view, size if queued or calm.used else large)
        except OSError as exc:
            return None if exc.args[0] in again else main.CONNECTION_LOST
        if not got:
            return main.CONNECTION_DONE
        protocol._rx += got
        protocol._read_at = seconds()  # the idle deadline counts from here
        if queued:
            write(view[:got].tobytes())  # behind what is queued
            return None
        try:
            sent = send(view[:got])
        except OSError:  # EAGAIN, or an error the transport will report itself
            sent = 0
        if sent < got:
            write(view[sent:got].tobytes())
        return None

    t.doRead = do_read

    def undo() -> None:
        vars(t).pop("doRead", None)

    return undo


_READ_BUFFERS: dict[int, memoryview] = {}


def _read_buffer(size: int) -> memoryview:
    """The process's one *size*-byte read buffer: a read is sent or copied before the next."""
    view = _READ_BUFFERS.get(size)
    if view is None:
        view = _READ_BUFFERS[size] = memoryview(bytearray(size))
    return view


class _Calm:
    """No budget: nothing charged, ever."""

    __slots__ = ()
    used = 0


def write_and_close(transport: object, data: bytes) -> None:
    """
    Write *data* and close the connection. On Twisted's own TCP server
    transport, just accepted with nothing queued, the bytes go out in one
    ``send`` and the connection closes in the same reactor turn (no write
    registration, no extra turn); elsewhere, ``write`` then ``loseConnection``.
    """
    t: Any = transport
    if type(t) is tcp.Server and not t.dataBuffer and not getattr(t, "_tempDataLen", 1):
        try:
            sent = t.socket.send(data)
        except OSError:
            sent = 0
        if sent == len(data):
            # Nothing is queued and nothing will be: closing now is what
            # loseConnection would do one turn later. (Twisted's own shared
            # connectionDone failure: no new Failure, and its class walk,
            # per connection.)
            t.connectionLost(connectionDone)
            return
        data = data[sent:]
    t.write(data)
    t.loseConnection()


def abort_now(transport: object) -> None:
    """
    Abort the connection and close its socket now, in this reactor turn.

    ``abortConnection`` closes the socket only on the next turn, while a
    listening port accepts a whole batch of connections in one: refusing
    them that way holds one descriptor per refused connection until the
    batch ends. On Twisted's own socket transports (TCP, UNIX) the socket is
    reset and closed before the next accept; elsewhere (TLS, test doubles),
    ``abortConnection``.
    """
    t: Any = transport
    if isinstance(t, tcp.Connection) and getattr(t, "socket", None) is not None:
        if not t.disconnected:
            t.connectionLost(Failure(ConnectionAborted()))
        return
    t.abortConnection()


def inherited_sockets() -> ListenFDs:
    """
    The sockets systemd passed to this process (``LISTEN_FDS``).

    Importing :mod:`twisted.internet.endpoints` reads ``LISTEN_FDS`` and
    removes it from the environment; its parser keeps what it read, so take
    it from there, or from the environment where it never did.
    """
    from twisted.internet import endpoints

    parser = getattr(endpoints, "_SystemdParser", None)
    fds = getattr(parser, "_sddaemon", None)
    if isinstance(fds, ListenFDs):
        return fds
    return ListenFDs.fromEnvironment()


def adopt_datagram_port(
    port_class: type[udp.Port],
    reactor: Any,
    fileno: int,
    family: int,
    protocol: DatagramProtocol,
    max_packet_size: int,
) -> udp.Port:
    """
    A *port_class* (a :class:`twisted.internet.udp.Port` subclass) around
    the inherited datagram socket *fileno*, not yet listening: call
    ``startListening``. (``reactor.adoptDatagramPort`` does the same with a
    plain ``udp.Port``, which would lose the subclass's checks.)

    :raises NotImplementedError: this Twisted cannot adopt into a subclass.
    """
    adopt = getattr(port_class, "_fromListeningDescriptor", None)
    if adopt is None:
        raise NotImplementedError(
            f"Twisted {twisted.__version__} cannot adopt a datagram socket into {port_class}"
        )
    port: udp.Port = adopt(reactor, fileno, family, protocol, max_packet_size)
    return port


def accept_directly(port: object, take: Callable[[Any, Any], Any]) -> bool:
    """
    On Twisted's own TCP port (not TLS): accept connections without building
    a Twisted transport for each. ``take(socket, address)`` gets every
    accepted socket with its address (a ``twisted.internet.address``
    ``IPv4Address`` or ``IPv6Address``, as ``buildProtocol`` would) and
    either deals with it and returns ``None`` (the socket is then its to
    close), or returns a protocol: the socket then becomes a Twisted
    transport for that protocol, exactly as Twisted's own accept loop makes
    one (``makeConnection``). Accept errors: no more clients, or any error
    but the two below, ends the loop until the next event (an error logged
    in one line, as Twisted logs the ones it expects; a guarded port's
    exhaustion reads as no more clients, see :func:`guard_accepts`); a
    connection the firewall refused (EPERM) or the peer reset before it was
    accepted (ECONNABORTED) is skipped. The number of accepts per event
    adapts as Twisted's does. False (nothing changed) for any other port.
    """
    if type(port) is not tcp.Port:
        return False
    p: Any = port
    again = (errno.EAGAIN, errno.EWOULDBLOCK)
    retry = (errno.EPERM, errno.ECONNABORTED)
    v4 = p.addressFamily == socket.AF_INET

    def do_read() -> None:
        accept = p.socket.accept  # the guarded listener's, when guarded
        limit = p.numberAccepts
        accepted = tries = 0
        while tries < limit:
            tries += 1
            try:
                skt, addr = accept()
            except OSError as exc:
                if exc.errno in retry:
                    continue
                if exc.errno not in again:
                    # What Twisted logs for the accept errors it expects;
                    # the port is read again at the next event.
                    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
                    legacy_log.msg(f"Could not accept new connection ({name})")
                break
            accepted += 1
            transport = None
            try:
                if v4:
                    address: Any = IPv4Address("TCP", addr[0], addr[1])
                else:
                    if addr[3]:  # a scope: its name in the host, as Twisted writes it
                        host = socket.getnameinfo(
                            addr, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
                        )[0]
                        addr = (host, *addr[1:])
                    address = IPv6Address("TCP", *addr)
                protocol = take(skt, address)
                if protocol is not None:
                    session = p.sessionno
                    p.sessionno = session + 1
                    transport = p.transport(skt, protocol, addr, p, session, p.reactor)
                    protocol.makeConnection(transport)
            except Exception:
                legacy_log.err(None, "accepting a connection")
                if transport is None:
                    skt.close()
        # As Twisted scales its accept loop: more next time if all were taken.
        p.numberAccepts = limit + 20 if accepted == limit else max(1, accepted)

    p.doRead = do_read
    return True


_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""accept() errors that mean the process (or system) is out of descriptors or memory."""


class _GuardedListener:
    """A listening socket whose ``accept`` reports exhaustion instead of raising it."""

    __slots__ = ("_accepted", "_exhausted", "_socket")

    def __init__(
        self, skt: Any, exhausted: Callable[[int], None], accepted: Callable[[], None]
    ) -> None:
        self._socket = skt
        self._exhausted = exhausted
        self._accepted = accepted

    def accept(self) -> Any:
        try:
            pair = self._socket.accept()
        except OSError as e:
            if e.errno in _EXHAUSTED:
                self._exhausted(e.errno)
                # What Twisted's accept loop takes for "no more clients": no
                # log line, no reserved-descriptor recovery that resets them.
                raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN)) from None
            raise
        self._accepted()
        return pair

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)


def guard_accepts(
    port: object, exhausted: Callable[[int], None], accepted: Callable[[], None]
) -> bool:
    """
    Make a listening Twisted port (TCP, UNIX, TLS over TCP) call
    *exhausted(errno)* when ``accept`` fails for lack of descriptors (EMFILE,
    ENFILE) or buffers, instead of Twisted's handling: one log line per
    attempt and, for EMFILE, accepting and closing every waiting connection.
    The connections stay queued; *exhausted* decides when to try again
    (``port.stopReading()`` / ``startReading()``). *accepted()* is called
    after every successful accept. False if *port* is not such a port.
    """
    p: Any = port
    skt = getattr(p, "socket", None)
    if not isinstance(p, tcp.Port) or skt is None:
        return False
    if not isinstance(skt, _GuardedListener):
        p.socket = _GuardedListener(skt, exhausted, accepted)
    return True


def fast_dispatch(reactor: Any) -> bool:
    """
    On Twisted's epoll reactor: replace its ``doIteration`` with one that
    hands each event to the reactor's own handler directly, without the
    per-event log context of ``log.callWithLogger`` (a dict copy and four
    calls per event, about 1.5 us, more than the rest of an echo), and a
    plain read event straight to ``doRead`` (then, as Twisted does, a reason
    to stop goes to ``_disconnectSelectable``: EOF, half-close, errors). An
    exception escaping a handler is still logged, as Twisted logs it; what is
    lost is only the legacy ``system`` prefix of log lines emitted inside a
    handler. Return whether it was installed (False: another reactor, or a
    Twisted without these names; nothing changes).
    """
    try:
        from twisted.internet.epollreactor import EPollReactor
    except ImportError:  # not Linux
        return False
    if type(reactor) is not EPollReactor or getattr(reactor, "_netproto_fast", False):
        return bool(getattr(reactor, "_netproto_fast", False))
    poller = getattr(reactor, "_poller", None)
    selectables = getattr(reactor, "_selectables", None)
    handle = getattr(reactor, "_doReadOrWrite", None)
    if not (callable(getattr(poller, "poll", None)) and isinstance(selectables, dict)):
        return False
    if not callable(handle):
        return False
    disconnect = getattr(reactor, "_disconnectSelectable", None)
    if not callable(disconnect):
        return False
    poll = poller.poll  # type: ignore[union-attr]
    lookup = selectables.get
    readable = select.EPOLLIN

    def do_poll(timeout: float | None) -> None:
        try:
            events = poll(-1 if timeout is None else timeout, len(selectables))
        except InterruptedError:
            return
        for fd, event in events:
            selectable = lookup(fd)
            if selectable is None:
                continue
            try:
                if event == readable:
                    # Only readable (no hang-up, no error, not writable): what
                    # _doReadOrWrite does then, without its other branches.
                    try:
                        why = selectable.doRead()
                    except BaseException:
                        why = sys.exc_info()[1]
                        legacy_log.err()
                    if why:
                        disconnect(selectable, why, True)
                else:
                    handle(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:
                _log_escaped(selectable)

    target: Any = reactor
    target.doIteration = do_poll
    _lean_main_loop(target, do_poll)
    target._netproto_fast = True
    return True


_LONGEST = 2147483.0
"""The longest epoll_wait timeout in seconds (2**31 ms), as Twisted caps it."""


def _lean_main_loop(reactor: Any, do_poll: Callable[[float | None], None]) -> bool:
    """
    Give *reactor* a ``mainLoop`` that runs ``runUntilCurrent`` and
    ``timeout`` only when they have work: after each poll it returns to them
    when a thread call is queued, a ``callLater`` was made, a timed call is
    due, or the reactor was stopped or crashed; otherwise it polls again at
    once, until the next timed call. Between events that schedule nothing
    (an echo, a datagram answered) a reactor turn is then one poll and four
    attribute reads instead of Twisted's two calls, each with its own clock
    read and heap inspection, and a log context. Takes effect from the next
    ``reactor.run()`` (not in a loop already running). False (nothing
    changed) where the names it reads are gone.
    """
    if not all(
        hasattr(reactor, name)
        for name in (
            "_started",
            "_justStopped",
            "_newTimedCalls",
            "_pendingTimedCalls",
            "threadCallQueue",
            "runUntilCurrent",
            "timeout",
            "seconds",
        )
    ):
        return False
    run_due = reactor.runUntilCurrent
    timeout = reactor.timeout
    seconds = reactor.seconds
    r = reactor

    def main_loop() -> None:
        while r._started:
            try:
                while r._started:
                    run_due()
                    wait = r.running and timeout()
                    while True:
                        do_poll(wait)
                        if (
                            r.threadCallQueue
                            or r._newTimedCalls
                            or r._justStopped
                            or not r._started
                            or not r.running
                        ):
                            break
                        pending = r._pendingTimedCalls
                        if not pending:
                            wait = None
                            continue
                        wait = pending[0].time - seconds()
                        if wait <= 0:
                            break
                        if wait > _LONGEST:
                            wait = _LONGEST
            except BaseException:
                legacy_log.err(None, "Unexpected error in main loop.")
        legacy_log.msg("Main loop terminated.")

    reactor.mainLoop = main_loop
    return True


def _log_escaped(selectable: Any) -> None:
    """Log the exception escaping *selectable*'s handler, as ``callWithLogger`` would."""
    try:
        prefix = selectable.logPrefix()
    except Exception:
        prefix = "(buggy logPrefix method)"
    legacy_log.err(system=prefix)
