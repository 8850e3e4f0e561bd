"""``faceguard server init|status``, ``faceguard kiosk join|status`` and ``faceguard sync``.

- ``server init --dsn DSN``: create or upgrade the fleet schema on a PostgreSQL server (an
  admin role that may create schemas and roles);
- ``server status [--dsn DSN] [--json]``: schema version, revision, counts, each kiosk's last
  contact; without ``--dsn`` it asks the server this kiosk has joined, as the kiosk;
- ``server bench --dsn DSN``: simulated kiosks at scale (:mod:`faceguard.fleet.bench`);
- ``kiosk join --dsn DSN --name NAME [--ca FILE]``: register this data folder as a kiosk (the
  DSN is used once, its password never stored; the kiosk's own credential goes to a file
  only its user may read); ``kiosk status``: this kiosk's sync state, without the network;
- ``sync [--json]``: one round (up, then down); exit 0 when everything is up to date both
  ways, 1 with the reason when the server cannot be reached (nothing is lost: entries wait),
  3 when a change from the server could not be taken over here (each named on stderr).

DSNs are libpq connection strings or URIs; a password may also come from ``PGPASSWORD`` or
``~/.pgpass`` instead of the command line.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from faceguard.console import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL
from faceguard.console import print_error as _err
from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.wording import plural

DSN_ENV = "FACEGUARD_SERVER_DSN"


def _dsn(args: argparse.Namespace) -> str | None:
    return args.dsn or os.environ.get(DSN_ENV)


def cmd_server(ctx: AppContext, args: argparse.Namespace) -> int:
    from faceguard.fleet.config import load_config, read_password
    from faceguard.fleet.server_schema import connect, init_server, server_status

    dsn = _dsn(args)
    if args.action == "bench":
        return _bench(dsn, args)
    if args.action == "init":
        if not dsn:
            raise FaceGuardError(f"server init needs --dsn DSN (or ${DSN_ENV})")
        result = init_server(dsn)
        done = ", ".join(result.applied) if result.applied else "nothing to do"
        print(f"fleet server schema at version {result.version} ({done})")
        for warning in result.warnings:
            _err(f"warning: {warning}")
        return EXIT_OK
    if not dsn:
        config = load_config(ctx.data_dir)
        if config is None:
            raise FaceGuardError(f"server status needs --dsn DSN (or ${DSN_ENV}), or a kiosk "
                                 "that has joined a fleet")
        dsn = config.conninfo(read_password(ctx.data_dir))
    with connect(dsn) as conn:
        status = server_status(conn)
    if args.json:
        print(json.dumps(status))
        return EXIT_OK
    print(f"schema version {status['schema_version']}, revision {status['revision']}: "
          f"{plural(status['people'], 'person', 'people')}, "
          f"{plural(status['templates'], 'template')}, {status['tombstones']} removed, "
          f"{plural(status['events'], 'event')}")
    for kiosk in status["kiosks"]:
        print(f"  {kiosk['name']:<20} last seen {kiosk['last_seen'] or 'never'}, "
              f"{plural(kiosk['events'], 'event')}")
    return EXIT_OK


def _bench(dsn: str | None, args: argparse.Namespace) -> int:
    from faceguard.fleet.bench import run_fleet_bench

    if not dsn:
        raise FaceGuardError(f"server bench needs --dsn DSN (or ${DSN_ENV}) of a scratch "
                             "database")
    report = run_fleet_bench(dsn, kiosks=args.kiosks, events=args.events, rate_hz=args.rate,
                             templates=args.templates, receivers=args.receivers,
                             memory_templates=args.memory_templates,
                             progress=lambda line: _err(line))
    print(json.dumps(report, indent=None if args.json else 1))
    return EXIT_OK


def cmd_kiosk(ctx: AppContext, args: argparse.Namespace) -> int:
    if args.action == "join":
        dsn = _dsn(args)
        if not dsn:
            raise FaceGuardError(f"kiosk join needs --dsn DSN (or ${DSN_ENV})")
        config = ctx.join_fleet(dsn, args.name, ca_file=args.ca, actor="cli")
        tls = f", TLS {config.sslmode}" if config.sslmode != "prefer" else ""
        print(f"joined {config.where()} as kiosk {config.kiosk_name!r}{tls}; "
              "run `faceguard sync` or start the kiosk")
        return EXIT_OK
    status = ctx.fleet_status()
    print(json.dumps(status.to_json()) if args.json else status.text())
    return EXIT_OK


def cmd_sync(ctx: AppContext, args: argparse.Namespace) -> int:
    report = ctx.sync_now()
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        pulled = report.applied
        print(f"up: {plural(report.uploaded_events, 'event')}, "
              f"{plural(report.pushed_people, 'person', 'people')}, "
              f"{plural(report.pushed_templates, 'template')}, {report.uploaded_other} other; "
              f"down: {plural(pulled.people, 'person', 'people')}, "
              f"{plural(pulled.templates, 'template')}, {plural(pulled.events, 'event')}, "
              f"{pulled.removed} removed; revision {report.cursor}")
    for conflict in report.applied.conflicts:
        _err(f"warning: {conflict}")
    if not report.up_to_date:
        _err(f"{plural(report.waiting, 'entry', 'entries')} still waiting for upload")
        return EXIT_ERROR
    return EXIT_PARTIAL if report.applied.conflicts else EXIT_OK


def register(commands: Any) -> None:
    """Add ``server``, ``kiosk`` and ``sync`` to the main parser's subcommands."""
    p = commands.add_parser("server", help="set up or inspect the fleet's PostgreSQL server")
    sub = p.add_subparsers(dest="action", required=True)
    a = sub.add_parser("init", help="create or upgrade the fleet schema (admin DSN)")
    a.add_argument("--dsn", help=f"PostgreSQL connection string (or ${DSN_ENV})")
    a = sub.add_parser("status", help="schema, revision, counts and kiosks")
    a.add_argument("--dsn", help="connection string (default: this kiosk's own)")
    a.add_argument("--json", action="store_true")
    a = sub.add_parser("bench", help="simulated kiosks against a scratch database: events/s, "
                       "sync lag p50/p99, an enrolment burst, memory of a large library")
    a.add_argument("--dsn", help="admin connection string of a scratch database")
    a.add_argument("--kiosks", type=int, default=50)
    a.add_argument("--events", type=int, default=200, help="events per kiosk and phase")
    a.add_argument("--rate", type=float, default=10.0, help="events per second per kiosk")
    a.add_argument("--templates", type=int, default=10_000, help="enrolment burst size")
    a.add_argument("--receivers", type=int, default=5,
                   help="kiosks that take the burst over")
    a.add_argument("--memory-templates", type=int, default=100_000,
                   help="templates in the memory measurement (0: skip)")
    a.add_argument("--json", action="store_true", help="one line")
    p.set_defaults(func=cmd_server)

    p = commands.add_parser("kiosk", help="join this kiosk to a fleet, or show its sync state")
    sub = p.add_subparsers(dest="action", required=True)
    a = sub.add_parser("join", help="register this data folder as a kiosk of the server")
    a.add_argument("--dsn", help=f"admin connection string, used once (or ${DSN_ENV})")
    a.add_argument("--name", required=True, help="this kiosk's (door's) name")
    a.add_argument("--ca", metavar="FILE",
                   help="CA certificate (PEM) of the server: TLS with sslmode verify-full")
    a = sub.add_parser("status", help="synced / offline since ..., entries waiting")
    a.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kiosk)

    p = commands.add_parser("sync", help="one sync round with the fleet server, then exit "
                            "(0: up to date both ways)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sync)
