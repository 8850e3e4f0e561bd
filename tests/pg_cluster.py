"""A throw-away PostgreSQL cluster for the fleet tests (initdb + pg_ctl, loopback only).

The cluster lives in a temporary folder, listens on a free port on 127.0.0.1 and on a Unix
socket in that folder, and is removed at the end of the session. PostgreSQL refuses to run as
root, so as root the server programs run as the ``postgres`` user (``runuser``). Tests skip,
saying why, where PostgreSQL 15 (or any initdb/pg_ctl) is not installed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SUPERUSER = "fg_admin"


def find_pg_bin() -> Path | None:
    """The folder of initdb/pg_ctl: PostgreSQL 15's first, else any on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    preferred = [c for c in candidates if "/15/" in c] + candidates
    for folder in preferred:
        if os.access(Path(folder) / "initdb", os.X_OK):
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One running cluster; ``dsn(db)`` for the superuser, ``new_database()`` per test."""

    def __init__(self, bin_dir: Path, *, tls: tuple[bytes, bytes] | None = None) -> None:
        """``tls``: (certificate PEM, key PEM) to serve TLS with (``ssl = on``)."""
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="faceguard-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.password = secrets.token_hex(12)
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            try:
                pw = pwd.getpwnam(self._user)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", self._user],
                               check=True)
                pw = pwd.getpwnam(self._user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.root.chmod(0o700)
        secret = self.root / "pw"
        secret.write_text(self.password)
        if self._user:
            shutil.chown(secret, self._user)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(secret),
                  "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        secret.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                       "max_connections = 200\nshared_buffers = 32MB\n")
            if tls is not None:
                conf.write("ssl = on\nssl_cert_file = 'server.crt'\n"
                           "ssl_key_file = 'server.key'\n")
        if tls is not None:
            for name, data in (("server.crt", tls[0]), ("server.key", tls[1])):
                target = self.data / name
                target.write_bytes(data)
                target.chmod(0o600)
                if self._user:
                    shutil.chown(target, self._user)
        self.start()

    def _run(self, program: str, *args: str, check: bool = True,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / program), *args]
        if self._user:
            command = ["runuser", "-u", self._user, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True,
                              timeout=timeout)

    def start(self) -> None:
        """Start (or restart) the server and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-w", "-t", "30", "start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL did not start; see {self.root / 'server.log'}")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m MODE`` (``immediate``: the hard stop a crash or power cut is)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def dsn(self, database: str = "postgres", user: str = SUPERUSER,
            password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "fg") -> str:
        """A fresh, empty database; its DSN for the superuser."""
        import psycopg

        name = f"{prefix}_{secrets.token_hex(4)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
