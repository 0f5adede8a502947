"""The HTTP/1.1 protocol ``qa serve`` runs: uvicorn's h11 one, closing connections that never finish a request head.

uvicorn closes a connection that stays idle after a response (``timeout_keep_alive``), but not one that has not
sent a complete request line and headers yet: a connection opened and left silent, or sent a header a byte at a
time, was held open for good, one file descriptor each (2026-12-08 audit: 3,000 such connections from one client
held 3,000 descriptors; the process limit is the ceiling, then nobody can connect). Here such a connection is
closed after :attr:`HeadTimeoutH11Protocol.head_timeout_s` to 2 x that without a complete request head. A request
whose head has arrived is never cut: a slow body, a long question, a large upload go on as before.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds a connection may take to send a complete request head (request line and headers).
HEAD_TIMEOUT_S = 10.0


class HeadTimeoutH11Protocol(H11Protocol):
    head_timeout_s = HEAD_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm(self.scope)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _arm(self, scope_then: object) -> None:
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._check_head, scope_then)

    def _check_head(self, scope_then: object) -> None:
        """Every ``head_timeout_s``: no new request head since the last look (uvicorn makes a new scope for each) and
        none being served -> close; else look again later."""
        self._head_timer = None
        if self.transport.is_closing():
            return
        serving = self.cycle is not None and not self.cycle.response_complete
        if self.scope is scope_then and not serving:
            self.logger.debug("closing a connection that sent no complete request head in %.0f s", self.head_timeout_s)
            self.transport.close()
            return
        self._arm(self.scope)
