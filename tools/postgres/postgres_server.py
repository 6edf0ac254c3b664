"""A real PostgreSQL server for the tests and the benchmarks: Debian's binaries on a temporary data directory.

``make test`` installs Debian's ``postgresql`` package (``tools/postgres/install.sh``); this module
finds its ``initdb`` and ``postgres`` (on ``PATH`` or under ``/usr/lib/postgresql/<version>/bin``),
creates a cluster with password authentication (SCRAM) in a fresh directory, and runs it on a free
port of 127.0.0.1 with no Unix socket. PostgreSQL refuses to run as root, so as root the cluster
belongs to the ``postgres`` system user the package creates.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

SUPERUSER = "postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries on this machine."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def binary(name: str) -> Path:
    """``initdb``/``postgres`` from ``PATH`` or the newest ``/usr/lib/postgresql/<version>/bin``."""
    found = shutil.which(name)
    if found:
        return Path(found)
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for directory in versions:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise PostgresUnavailable(f"{name} not found: install Debian's postgresql package (tools/postgres/install.sh)")


@dataclass(frozen=True)
class PostgresServer:
    """A running server: connect to ``host:port`` as ``postgres`` with ``password``."""

    port: int
    password: str
    data_dir: Path
    host: str = "127.0.0.1"

    def dsn(self, *, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"host={self.host} port={self.port} dbname={dbname} user={user} password={secret} connect_timeout=5"

    def url(self, *, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{user}:{secret}@{self.host}:{self.port}/{dbname}"

    def execute(
        self, sql: str, params: Sequence[Any] | None = None, *, dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        """Run ``sql`` as the superuser, in autocommit; the rows it returned, if any."""
        with psycopg.connect(self.dsn(dbname=dbname), autocommit=True) as connection:
            cursor = connection.execute(sql.encode(), params)
            return cursor.fetchall() if cursor.description else []


def _owner() -> tuple[int, int] | None:
    """The uid/gid the server runs as: ``postgres`` when this process is root, else none (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root needs the postgres system user (Debian's package makes it)"
        ) from None
    return entry.pw_uid, entry.pw_gid


def wait_until_accepting(
    dsn: str, process: subprocess.Popen[bytes] | None = None, log: Path | None = None, timeout: float = START_TIMEOUT
) -> None:
    """Return once a client can connect with ``dsn``. PostgreSQL listens before it accepts: until its
    start-up is done it answers every connection with ``the database system is starting up``, so an
    open port is not enough (a caller connecting right then failed now and then)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            shown = log.read_text(errors="replace") if log is not None else ""
            raise RuntimeError(f"postgres exited with {process.returncode}:\n{shown}")
        try:
            with psycopg.connect(dsn, connect_timeout=2):
                return
        except psycopg.OperationalError as error:
            last = error
            time.sleep(0.05)
    raise RuntimeError(f"postgres did not accept connections within {timeout} s: {last}")


@contextmanager
def postgres_server(password: str | None = None, *, host: str = "127.0.0.1") -> Iterator[PostgresServer]:
    """Start a throw-away cluster (the superuser's password random unless given) listening on ``host`` only
    (another address than 127.0.0.1: a test node's, for its pods; any client with the password may then
    connect); stop it and delete its files on exit."""
    password = password or "pg-" + secrets.token_urlsafe(12)
    initdb, postgres = binary("initdb"), binary("postgres")
    owner = _owner()
    # Not under pytest's tmp_path: that is private to root, and the server may run as postgres.
    root = Path(tempfile.mkdtemp(prefix="connector-pg-"))
    data_dir, password_file, log = root / "data", root / "pwfile", root / "server.log"
    password_file.write_text(password + "\n", encoding="utf-8")
    if owner is not None:
        for path in (root, password_file):
            os.chown(path, *owner)
    uid, gid = owner if owner else (None, None)
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(  # noqa: S603 - the cluster's own binaries
            [str(initdb), "-D", str(data_dir), "-U", SUPERUSER, "--auth=scram-sha-256", f"--pwfile={password_file}",
             "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True, timeout=120, user=uid, group=gid,
        )  # fmt: skip
        if host != "127.0.0.1":
            with (data_dir / "pg_hba.conf").open("a", encoding="utf-8") as hba:
                hba.write("host all all all scram-sha-256\n")
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - the cluster's own binaries
                [str(postgres), "-D", str(data_dir), "-p", str(port), "-c", f"listen_addresses={host}",
                 "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200"],
                stdout=out, stderr=subprocess.STDOUT, user=uid, group=gid,
            )  # fmt: skip
        server = PostgresServer(port=port, password=password, data_dir=data_dir, host=host)
        wait_until_accepting(server.dsn(), process, log)
        yield server
    finally:
        if process is not None:
            process.terminate()  # SIGTERM: smart shutdown; clients are gone by now
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        shutil.rmtree(root, ignore_errors=True)
