"""Stable error codes of the HTTP connector (they become BPMN error codes in spiff-arena).

Every failure the community ``connector-http`` also reports carries the code it reports: the
class name of the exception ``requests`` (or the JSON/XML parser) raises for it, so an error
boundary written for the community connector keeps catching the same failures. Only
:data:`INVALID_PARAMETERS` is this connector's own: it covers parameters the community
connector does not have or passes on unchecked.
"""

from __future__ import annotations

from typing import Final

# No request reached the upstream, or no (complete) answer came back.
CONNECTION_ERROR: Final = "ConnectionError"
"""DNS failure, connection refused or reset, the connection closed or an invalid answer before the
response headers, a response body that stalls for ``timeout`` seconds, an attempt that takes
twice ``timeout`` in total (e.g. the upstream does not read the request body)."""

SSL_ERROR: Final = "SSLError"
"""The TLS handshake failed: certificate verification, hostname mismatch, a server not speaking TLS."""

CONNECT_TIMEOUT: Final = "ConnectTimeout"
"""No connection within ``timeout`` seconds."""

READ_TIMEOUT: Final = "ReadTimeout"
"""Connected, but no response headers within ``timeout`` seconds."""

TOO_MANY_REDIRECTS: Final = "TooManyRedirects"
"""More than :data:`MAX_REDIRECTS` redirects."""

CHUNKED_ENCODING_ERROR: Final = "ChunkedEncodingError"
"""The response body broke off: shorter than its Content-Length, invalid chunked encoding, reset."""

CONTENT_DECODING_ERROR: Final = "ContentDecodingError"
"""The response body does not decode per its Content-Encoding (e.g. broken gzip)."""

PROXY_ERROR: Final = "ProxyError"
"""The HTTP proxy from the environment (``HTTPS_PROXY``, ...) refused or failed the request."""

# The request could not be formed; nothing was sent.
MISSING_SCHEMA: Final = "MissingSchema"
"""The URL has no scheme (``example.com/x``, ``/path``, empty)."""

INVALID_SCHEMA: Final = "InvalidSchema"
"""The URL's scheme is not ``http``/``https`` (``ftp://...``, ``mailto:...``, ``host:8080/x``)."""

INVALID_URL: Final = "InvalidURL"
"""The URL does not parse or has no host (``http://``, ``http://[::1``, ``http://host:99999/``)."""

LOCATION_PARSE_ERROR: Final = "LocationParseError"
"""The host name has an empty or over-long label (``http://a..b/``): urllib3's own exception, which
``requests`` lets through when it connects."""

INVALID_HEADER: Final = "InvalidHeader"
"""A header name or value is not a string, has leading whitespace, CR/LF, a ``:`` in the name,
or another character that cannot be sent."""

UNICODE_ENCODE_ERROR: Final = "UnicodeEncodeError"
"""A header value outside Latin-1, a header name or basic-auth credential outside ASCII/Latin-1."""

INVALID_JSON_ERROR: Final = "InvalidJSONError"
"""``data`` cannot be sent as JSON (NaN or infinity)."""

RESPONSE_TOO_LARGE: Final = "ResponseTooLarge"
"""This connector's own: the response body (decoded) is larger than ``HTTP_MAX_RESPONSE_BYTES`` in the
proxy's ``config`` (:data:`DEFAULT_MAX_RESPONSE_BYTES` by default); it is not read further, and the
upstream's status is reported with an empty body. Not retried."""

DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024

INVALID_PARAMETERS: Final = "InvalidParameters"
"""This connector's own: ``headers``/``params`` not a flat object, ``data`` that does not fit
``body_format``, basic auth and ``bearer_token`` together."""

# The upstream answered.
JSON_DECODE_ERROR: Final = "JSONDecodeError"
"""A non-empty body with a JSON content type that does not parse (wins over ``HttpError<status>``)."""

RECURSION_ERROR: Final = "RecursionError"
"""A JSON body nested deeper than the parser can follow (about 1,000 levels), as the community
connector reports it."""

EXPAT_ERROR: Final = "ExpatError"
"""A non-empty body with an XML content type that does not parse (wins over ``HttpError<status>``)."""

NO_RESPONSE_STATUS: Final = 500
"""``http_status`` of every failure without a response, as the community connector reports."""

MAX_REDIRECTS: Final = 30
"""Redirects followed before :data:`TOO_MANY_REDIRECTS` (``requests``' limit)."""


def http_error(status: int) -> str:
    """``HttpError404`` and friends: the upstream answered with ``status`` >= 400."""
    return f"HttpError{status}"
