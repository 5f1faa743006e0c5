"""
Results as a running operation produces them (a ping's probe results, a
trace's hops): handed to an optional callback as they come, and to ``async
for``, which sees every result from the first (kept until consumed; with
several loops at once, each result goes to one of them). Shared by
:mod:`netproto.ping` and :mod:`netproto.traceroute`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

__all__ = ["Results"]

T = TypeVar("T")


class Results(Generic[T]):
    """
    Results of one operation: *callback* (if any) gets each as it comes;
    iteration gets them all in order, keeping at most *keep* not yet consumed
    (the oldest are dropped beyond that; ``None``: no limit) until
    :meth:`close`.
    """

    def __init__(self, callback: Callable[[T], object] | None, keep: int | None = None) -> None:
        self.callback = callback
        self.closed = False
        self._queue: deque[T] = deque(maxlen=keep)
        self._readers: list[Deferred[T | None]] = []

    def emit(self, result: T) -> Failure | None:
        """
        Hand *result* on. Return the failure if the callback raised (the
        result then goes no further: the operation should end), else None.
        """
        if self.callback is not None:
            try:
                self.callback(result)
            except Exception:
                return Failure()
        if self._readers:
            self._readers.pop(0).callback(result)
        else:
            self._queue.append(result)
        return None

    def close(self) -> None:
        """No more results: iteration ends once what is queued is consumed."""
        self.closed = True
        readers, self._readers = self._readers, []
        for waiter in readers:
            waiter.callback(None)

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            if self._queue:
                yield self._queue.popleft()
                continue
            if self.closed:
                return
            waiter: Deferred[T | None] = Deferred()
            self._readers.append(waiter)
            result = await waiter
            if result is None:
                return
            yield result
