"""The TLS context that verifies the SMTP server.

Without ``EMAIL_SMTP_CA_FILE`` it trusts the system store (OpenSSL's default locations, which
``SSL_CERT_FILE``/``SSL_CERT_DIR`` override); with it, only the CA certificates it names. The
value is a path to a PEM bundle, or the PEM text itself (what a Kubernetes ``secretKeyRef``
hands over: a Connector resource passes config values, not files). Either way the certificate
must be valid for ``EMAIL_SMTP_HOST`` (host name checking is on) and TLS 1.2 is the minimum.

Contexts are built off the event loop (they read files) and reused: per PEM text, and per file
until the file changes (a rotated Secret or ConfigMap gets a new inode or mtime).
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl

from spiff_connector_email import errors
from spiff_connector_email.settings import CA_FILE
from spiff_connector_sdk import CommandError

PEM_MARKER = "-----BEGIN"


def _unusable(problem: str) -> CommandError:
    return CommandError(errors.INVALID_EMAIL_CONFIG, f"{CA_FILE} in the proxy's config {problem}")


@functools.lru_cache(maxsize=1)
def _system_context() -> ssl.SSLContext:
    return ssl.create_default_context()


@functools.lru_cache(maxsize=8)
def _pem_context(pem: str) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=pem)


@functools.lru_cache(maxsize=8)
def _file_context(path: str, stamp: tuple[int, int, int]) -> ssl.SSLContext:
    """``stamp`` (inode, mtime, size) is part of the cache key: a changed file is read again."""
    return ssl.create_default_context(cafile=path)


def _stamp(path: str) -> tuple[int, int, int]:
    try:
        info = os.stat(path)
    except OSError as error:
        raise _unusable(f"is neither PEM text nor a readable file ({error.strerror})") from None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _context(ca: str | None) -> ssl.SSLContext:
    if ca is None:
        return _system_context()
    try:
        if ca.startswith(PEM_MARKER):
            return _pem_context(ca)
        return _file_context(ca, _stamp(ca))
    except (ssl.SSLError, ValueError):
        raise _unusable("holds no valid PEM CA certificate") from None
    except OSError as error:
        raise _unusable(f"cannot be read ({error.strerror})") from None


async def client_context(ca: str | None) -> ssl.SSLContext:
    """The verifying client context for ``EMAIL_SMTP_CA_FILE`` (None: the system store).

    :raises CommandError: ``InvalidEmailConfig`` when the file cannot be read or holds no CA certificate.
    """
    return await asyncio.to_thread(_context, ca)
