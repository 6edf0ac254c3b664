"""A real OAuth2 authorization server on 127.0.0.1, built from authlib's server components.

Flask + ``authlib.integrations.flask_oauth2.AuthorizationServer`` with in-memory stores: the
authorization-code grant with PKCE required (S256 only), the refresh-token grant (rotating refresh
tokens), confidential clients authenticating with client_secret_basic or client_secret_post, exact
redirect URI registration. ``/authorize`` approves at once as user ``alice`` (no login page) unless
``deny`` is set. The same server plays spiff-arena's backend at
``/v1.0/authentication_callback/<connector>/<auth>``: it echoes its decoded query, as Flask's
``request.args`` (what spiff-arena reads) sees it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

USER = "alice"


@dataclass
class Client:
    client_id: str
    client_secret: str | None
    redirect_uris: list[str] = field(default_factory=list)
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")
    scope: str = "openid offline_access read write"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class Token:
    client_id: str
    access_token: str
    refresh_token: str | None
    scope: str
    user: str
    issued_at: float
    expires_in: int
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() > self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return self.user

    def get_client(self) -> Any:
        raise NotImplementedError


class OAuthProvider:
    """The server's state: clients, codes, tokens, switches and what it saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.deny = False
        self.token_endpoint_down = False
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, Any]] = []
        self.url = ""

    def add_client(self, client_id: str, client_secret: str | None, **kwargs: Any) -> Client:
        client = Client(client_id, client_secret, **kwargs)
        with self.lock:
            self.clients[client_id] = client
        return client

    def issued_tokens(self) -> list[str]:
        with self.lock:
            return [t for token in self.tokens.values() for t in (token.access_token, token.refresh_token) if t]


def _build_app(provider: OAuthProvider) -> Flask:
    app = Flask("test-oauth-provider")
    app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = True
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 3600, "refresh_token": 3600}

    def query_client(client_id: str) -> Client | None:
        return provider.clients.get(client_id)

    def save_token(token: dict[str, Any], req: Any) -> None:
        with provider.lock:
            provider.tokens[token["access_token"]] = Token(
                client_id=req.client.client_id,
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token"),
                scope=token.get("scope", ""),
                user=USER,
                issued_at=time.time(),
                expires_in=int(token.get("expires_in", 0)),
            )

    server = AuthorizationServer(app, query_client=query_client, save_token=save_token)

    class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

        def validate_authorization_request(self) -> Any:
            # PKCE is required of every client here, confidential ones too, and only S256.
            data = self.request.payload.data
            if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
                raise InvalidRequestError("PKCE with code_challenge_method=S256 is required.")
            return super().validate_authorization_request()

        def save_authorization_code(self, code: str, req: Any) -> None:
            data = req.payload.data
            with provider.lock:
                provider.codes[code] = Code(
                    code=code,
                    client_id=req.client.client_id,
                    redirect_uri=req.payload.redirect_uri,
                    scope=req.payload.scope or "",
                    user=req.user,
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                )

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            item = provider.codes.get(code)
            return item if item is not None and item.client_id == client.client_id else None

        def delete_authorization_code(self, authorization_code: Code) -> None:
            with provider.lock:
                provider.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Code) -> str:
            return authorization_code.user

    class PkceChallenge(CodeChallenge):
        def get_authorization_code_challenge(self, authorization_code: Code) -> str | None:
            return authorization_code.code_challenge

        def get_authorization_code_challenge_method(self, authorization_code: Code) -> str | None:
            return authorization_code.code_challenge_method

    class RefreshTokenGrant(grants.RefreshTokenGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
        INCLUDE_NEW_REFRESH_TOKEN = True

        def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
            with provider.lock:
                for token in provider.tokens.values():
                    if token.refresh_token == refresh_token and not token.revoked:
                        return token
            return None

        def authenticate_user(self, credential: Token) -> str:
            return credential.user

        def revoke_old_credential(self, credential: Token) -> None:
            credential.revoked = True

    server.register_grant(AuthorizationCodeGrant, [PkceChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)

    @app.get("/authorize")
    def authorize() -> Any:
        provider.authorize_requests.append(dict(request.args))
        try:
            grant = server.get_consent_grant(end_user=USER)
        except OAuth2Error as error:
            return server.handle_error_response(None, error)
        return server.create_authorization_response(grant_user=None if provider.deny else USER, grant=grant)

    @app.post("/token")
    def issue_token() -> Any:
        provider.token_requests.append(
            {
                "form_keys": sorted(request.form),
                "grant_type": request.form.get("grant_type"),
                "basic_auth": request.authorization is not None,
                "redirect_uri": request.form.get("redirect_uri"),
            }
        )
        if provider.token_endpoint_down:
            return "upstream database unavailable", 503
        return server.create_token_response()

    @app.get("/v1.0/authentication_callback/<connector>/<auth>")
    def spiff_backend_callback(connector: str, auth: str) -> Any:
        return jsonify({"connector": connector, "auth": auth, "args": request.args.to_dict(flat=True)})

    return app


@contextmanager
def serve_oauth_provider() -> Iterator[OAuthProvider]:
    """Run the authorization server on 127.0.0.1 (free port) in a thread."""
    provider = OAuthProvider()
    server = make_server("127.0.0.1", 0, _build_app(provider), threaded=True)
    provider.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-oauth-provider", daemon=True
    )
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        thread.join(timeout=10)
