"""Request paths as spiff-arena builds them: normalised before anything else reads them.

spiff-arena appends ``/v1/...`` to its connector-proxy URL by string concatenation, so a URL that
ends in ``/`` makes it call ``//v1/commands`` and ``//v1/do/...``; behind an ingress the URL may carry
a path prefix. Runs of slashes collapse to one and the configured prefix is removed, without a
redirect (the backend does not follow one on POST). It runs outermost, so the API key check sees the
same path the routes do.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

_SLASHES = re.compile(r"/{2,}")


def normalised(path: str, prefix: str = "") -> str:
    """``path`` with runs of slashes collapsed and ``prefix`` (``/a/b`` form, or empty) removed."""
    if "//" in path:
        path = _SLASHES.sub("/", path)
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :] or "/"
    return path


class NormalisedPaths:
    def __init__(self, app: ASGIApp, prefix: str = "") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = normalised(scope["path"], self.prefix)
            if path != scope["path"]:
                raw = scope.get("raw_path")
                raw_path = normalised(raw.decode("latin-1"), self.prefix).encode("latin-1") if raw else None
                scope = {**scope, "path": path, "raw_path": raw_path}
        await self.app(scope, receive, send)
