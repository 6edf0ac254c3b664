"""A response's head and the body that follows it in one write, not two.

uvicorn writes a response's status line and headers, then its body, each with its own
``transport.write``: two ``send`` system calls, two TCP segments. Under load the kernel often merges
the two anyway; at one connection it does not, and one write saved 20-60 us of CPU per ``/v1/do``
call in A/B runs. :class:`HeadWithBody`
stands between one request's cycle and the connection's transport: it keeps the head back and sends
it with the first body write, which the app makes in the same step of the event loop when the
response is at hand. A head whose body does not come in that step (a streamed response still
waiting for its first chunk) goes out on its own at the loop's next iteration, so nothing waits
longer than that. ``100 Continue`` is never kept back.
"""

from __future__ import annotations

import asyncio
from typing import Any

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HeadWithBody:
    """One request's view of the connection's transport (uvicorn's cycle calls ``write``,
    ``close`` and ``is_closing``; anything else goes to the transport itself)."""

    __slots__ = ("_held", "_loop", "_transport", "_wrote")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._wrote = False  # the head has been seen: every later write goes straight through

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif self._wrote or data == CONTINUE:
            self._transport.write(data)
        else:  # the cycle's first write after any 100 Continue: the head
            self._wrote = True
            self._held = bytes(data)
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send a head still kept back (nothing when its body already took it along)."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
