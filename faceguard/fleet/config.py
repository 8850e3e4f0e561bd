"""A kiosk's membership of a fleet: where the server is, who the kiosk is, its credential.

``faceguard kiosk join --dsn DSN --name NAME`` uses the DSN once (an admin role that may create
roles) to register the kiosk and create the kiosk's own login role, a member of
``faceguard_kiosk`` with a random password. The data folder then holds:

- ``fleet.json``: kiosk id and name, server host, port, database, role, TLS options; no secret;
- ``fleet-credentials``: the kiosk role's password, created with mode 0600 (readable only by
  the kiosk's user), never printed, logged or written to the audit.

The admin DSN's password is not kept anywhere. ``sslmode`` is ``verify-full`` whenever a CA
file is configured (``--ca FILE``): the server's certificate must chain to it and name the
host.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from faceguard.fleet.server_migrations import KIOSK_GROUP
from faceguard.fleet.server_schema import (
    ServerError,
    check_schema,
    connect,
    describe,
    role_name_for,
)

FLEET_FILE = "fleet.json"
CREDENTIALS_FILE = "fleet-credentials"


@dataclass(frozen=True)
class FleetConfig:
    """What ``fleet.json`` holds (no secret)."""

    kiosk_id: str
    kiosk_name: str
    host: str
    port: int
    dbname: str
    user: str
    sslmode: str = "prefer"
    sslrootcert: str = ""

    def conninfo(self, password: str) -> str:
        """The libpq connection string for this kiosk (with its password)."""
        from psycopg.conninfo import make_conninfo

        extra = {"sslrootcert": self.sslrootcert} if self.sslrootcert else {}
        return make_conninfo(host=self.host, port=self.port, dbname=self.dbname,
                             user=self.user, password=password, sslmode=self.sslmode,
                             application_name=f"faceguard {self.kiosk_name}"[:63], **extra)

    def where(self) -> str:
        """``host:port/db`` for messages."""
        return f"{self.host}:{self.port}/{self.dbname}"


def load_config(data_dir: Path) -> FleetConfig | None:
    """The kiosk's fleet membership, or None when it has not joined one."""
    path = data_dir / FLEET_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ServerError(f"cannot read {path}: {error}") from error
    try:
        return FleetConfig(**{k: raw[k] for k in FleetConfig.__dataclass_fields__ if k in raw})
    except TypeError as error:
        raise ServerError(f"{path} is incomplete ({error}); join again") from error


def read_password(data_dir: Path) -> str:
    """The kiosk role's password; ServerError when the file is missing or others may read it."""
    path = data_dir / CREDENTIALS_FILE
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ServerError(f"the fleet credential {path} is missing; join the fleet again "
                          "(faceguard kiosk join)") from None
    except OSError as error:
        raise ServerError(f"cannot read the fleet credential {path}: {error.strerror}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ServerError(f"the fleet credential {path} may be read by other users; "
                          f"run `chmod 600 {path}`")
    return text


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created 0600, then renamed over the old one)."""
    partial = path.with_name(path.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _save(data_dir: Path, config: FleetConfig, password: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    _write_private(data_dir / CREDENTIALS_FILE, password + "\n")
    target = data_dir / FLEET_FILE
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(asdict(config), indent=1) + "\n", encoding="utf-8")
    os.replace(partial, target)


def join(data_dir: Path, admin_dsn: str, name: str, *, ca_file: str | None = None) -> FleetConfig:
    """Register this data folder as kiosk ``name`` on the server and store its credential.

    Joining the same server again from the same data folder under the same name keeps the
    kiosk's id and gives it a new password; another server or name is a new kiosk there.
    ServerError when the name belongs to another kiosk, the server is not initialised or the
    admin role may not create roles.
    """
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    clean = " ".join(str(name).split())
    if not clean or len(clean) > 64:
        raise ServerError("a kiosk name is 1 to 64 characters")
    try:
        parts: dict[str, Any] = conninfo_to_dict(admin_dsn)
    except psycopg.Error as error:
        raise ServerError(f"--dsn is not a PostgreSQL connection string: "
                          f"{describe(error)}") from None
    previous = load_config(data_dir)
    same_server = previous is not None and (previous.host, previous.port, previous.dbname) == (
        str(parts.get("host") or "localhost"), int(parts.get("port") or 5432),
        str(parts.get("dbname") or parts.get("user") or "postgres"))
    kiosk_id = previous.kiosk_id if previous and same_server and \
        previous.kiosk_name == clean else str(uuid.uuid4())
    role = role_name_for(kiosk_id)
    password = secrets.token_urlsafe(24)
    with connect(admin_dsn) as conn:
        try:
            check_schema(conn)
            row = conn.execute("SELECT id::text FROM kiosks WHERE name = %s",
                               (clean,)).fetchone()
            if row is not None and row[0] != kiosk_id:
                raise ServerError(f"a kiosk named {clean!r} has already joined this server; "
                                  "choose another name")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                  (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                                 "PASSWORD {}").format(sql.Identifier(role),
                                                       sql.Literal(password)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(KIOSK_GROUP),
                                                          sql.Identifier(role)))
            conn.execute("INSERT INTO kiosks (id, name, role_name) VALUES (%s, %s, %s) "
                         "ON CONFLICT (id) DO NOTHING", (kiosk_id, clean, role))
            conn.commit()
        except psycopg.Error as error:
            conn.rollback()
            raise ServerError(f"cannot join the fleet server: {describe(error)}") from None
    sslmode = "verify-full" if ca_file else str(parts.get("sslmode") or "prefer")
    config = FleetConfig(kiosk_id=kiosk_id, kiosk_name=clean,
                         host=str(parts.get("host") or "localhost"),
                         port=int(parts.get("port") or 5432),
                         dbname=str(parts.get("dbname") or parts.get("user") or "postgres"),
                         user=role, sslmode=sslmode,
                         sslrootcert=str(Path(ca_file).resolve()) if ca_file else "")
    _save(data_dir, config, password)
    return config
