"""
A budget of bytes queued for the peers of one service. A peer that sends and
never reads fills its connection's queue to the high-water mark, and then
the service stops reading from it; without a budget, N such peers hold N
queues. Past the budget, the service stops reading from *every* peer until
the queues drain (peers read, or the write-stall deadline aborts them) below
three quarters of it, so memory under attack is the budget, not the
connection cap times the queue size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["BufferBudget"]


class BufferBudget:
    """
    *budget* bytes (0: unlimited) for the queues of the connections that
    *connections()* lists. A connection is *charged* what it holds when its
    transport pauses it, *refunded* when it drains or ends; while the total
    is over budget every connection's reading is *held* (paused).
    """

    def __init__(self, budget: int, connections: Callable[[], Iterable[Any]]) -> None:
        self.budget = budget
        self.connections = connections
        self.used = 0
        """Bytes charged now."""
        self.over = False
        """Whether reads are held (the budget was reached, not yet drained to 3/4)."""
        self.held: set[Any] = set()
        """The connections whose reading the budget paused."""
        self.episodes = 0
        """How many times the budget was reached."""
        self._charged: dict[Any, int] = {}

    def charge(self, conn: Any, queued: int) -> None:
        """*conn* holds *queued* bytes (its transport paused it)."""
        if not self.budget:
            return
        self.used += queued - self._charged.get(conn, 0)
        self._charged[conn] = queued
        if not self.over and self.used >= self.budget:
            self.over = True
            self.episodes += 1
            for other in self.connections():
                self.hold(other)

    def refund(self, conn: Any) -> bool:
        """*conn* drained (or ended); True if it may read again."""
        self.used -= self._charged.pop(conn, 0)
        if self.over and self.used < self.budget * 3 // 4:
            self.over = False
            held, self.held = self.held, set()
            for other in held:
                if other is not conn:
                    other.release_reading()
        return not self.over

    def admit(self, conn: Any) -> None:
        """A new connection: held at once while over budget."""
        if self.over:
            self.hold(conn)

    def forget(self, conn: Any) -> None:
        """*conn* ended."""
        self.held.discard(conn)
        self.refund(conn)

    def hold(self, conn: Any) -> None:
        """Pause *conn*'s reading for the budget."""
        if conn not in self.held:
            self.held.add(conn)
            conn.hold_reading()
