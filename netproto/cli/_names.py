"""
Reverse lookups of the addresses a command shows (traceroute's responders,
ping's repliers), started as they arrive and kept per address:
:class:`Names`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Names"]


class Names:
    """
    The names of addresses, looked up through :mod:`netproto.lookup` (its
    ``lookup_addr``, the system's by default) once each; with *enabled*
    false, none is looked up and every name is unknown. *on_known* is
    called each time a lookup ends.
    """

    def __init__(
        self, reactor: Any, enabled: bool, on_known: Callable[[], object] | None = None
    ) -> None:
        self.enabled = enabled
        self.on_known = on_known
        self._reactor = reactor
        self._lookup: Any = None
        self._found: dict[str, str | None] = {}
        self._pending: dict[str, Any] = {}

    def prefetch(self, hop: Any) -> None:
        """Start looking up the names of *hop*'s responders (a trace's on_hop)."""
        for responder in hop.responders:
            self.start(responder.address)

    def start(self, address: str | None) -> None:
        """Start looking up the name of *address*, unless known or asked already."""
        if not self.enabled or address is None:
            return
        if address in self._found or address in self._pending:
            return
        from twisted.internet.defer import Deferred

        if self._lookup is None:
            from netproto.lookup import Lookup

            self._lookup = Lookup(self._reactor)
        lookup = Deferred.fromCoroutine(self._lookup.lookup_addr(address))
        self._pending[address] = lookup
        lookup.addCallbacks(
            lambda names, a=address: self._keep(a, names[0].rstrip(".")),
            lambda _, a=address: self._keep(a, None),
        )

    def _keep(self, address: str, name: str | None) -> None:
        self._found[address] = name
        self._pending.pop(address, None)
        if self.on_known is not None:
            self.on_known()

    def ready(self, address: str | None) -> bool:
        """Whether the name of *address* is known (or will never be looked up)."""
        return not self.enabled or address is None or address in self._found

    def known(self, address: str | None) -> str | None:
        """The name of *address* found so far, without its final dot, or None."""
        return self._found.get(address) if address is not None else None

    async def name(self, address: str) -> str | None:
        """The name of *address* without its final dot (None when unknown, or with -n)."""
        lookup = self._pending.get(address)
        if lookup is not None:
            from twisted.internet.defer import Deferred

            waiter: Deferred[None] = Deferred()

            def wake(result: object) -> object:
                if not waiter.called:
                    waiter.callback(None)
                return result

            lookup.addBoth(wake)
            await waiter
        return self._found.get(address)

    async def settled(self) -> None:
        """Wait until every lookup started has ended."""
        for address in list(self._pending):
            await self.name(address)
