"""`visio` command line: serve, users, rooms."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from visio_core import settings as settings_mod
from visio_core.accounts import AccountError
from visio_core.db import DatabaseError
from visio_core.settings import SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="visio", description="Videoconferencing booked from the calendar."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("serve", help="run the whole stack (CalDAV server and web backend)")
    sub.add_parser("caldav", help="run only the CalDAV server (used by serve)")

    users = sub.add_parser("users", help="local accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = users.add_parser("add", help="create an account")
    add.add_argument("login")
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--entity", default="")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    lst = users.add_parser("list", help="one line per account")
    lst.add_argument("--disabled", action="store_true", help="only disabled accounts")
    dis = users.add_parser("disable", help="stop an account from logging in (data is kept)")
    dis.add_argument("login")
    ena = users.add_parser("enable", help="let a disabled account log in again")
    ena.add_argument("login")

    sync = sub.add_parser(
        "ldap-sync",
        help="read the directory's accounts now (a full pass: notices who left)",
    )
    sync.add_argument(
        "--no-wait", action="store_true", help="fail (exit 1) if another sync is running"
    )
    sync.add_argument(
        "--max-wait",
        type=float,
        metavar="SECONDS",
        help="wait at most this long for a running sync (default 1800)",
    )

    out = sub.add_parser("outbox", help="invitation messages pending or failed")
    out.add_argument("--all", action="store_true", help="also list the messages already sent")
    out.add_argument("--retry", action="store_true", help="retry pending messages now")

    rooms = sub.add_parser("rooms", help="the room registry").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    rooms.add_parser(
        "list", help="rooms with their next occurrence and, when live, the worker holding them"
    )
    rooms.add_parser("rebuild", help="recreate the registry from the calendars alone")

    recs = sub.add_parser("recordings", help="meeting recordings").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    recs.add_parser("list", help="one line per recording, ending with its file path(s)")
    rec_del = recs.add_parser("delete", help="delete recordings and their files")
    rec_del.add_argument("ids", nargs="+", type=int, metavar="ID")
    recs.add_parser("purge", help="delete what is older than VISIO_RECORDING_DAYS now")

    dbs = sub.add_parser(
        "db", help="the database (VISIO_DATABASE_URL, else SQLite)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    dbs.add_parser("upgrade", help="bring the schema to this version (PostgreSQL: run once)")
    dbs.add_parser("version", help="the schema version (exit 1 when an upgrade is due)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings, sections = settings_mod.load(os.environ)
        if args.command == "serve":
            from visio_cli.serve import serve

            return serve(settings)
        if args.command == "caldav":
            from caldav_plugin.app import serve as caldav_serve

            caldav_serve()
            return 0
        if args.command == "users":
            from visio_cli import users

            return users.run(settings, args)
        if args.command == "ldap-sync":
            from visio_cli import ldap

            return ldap.run(settings, sections, args)
        if args.command == "outbox":
            from visio_cli import outbox

            return outbox.run(settings, args)
        if args.command == "rooms":
            from visio_cli import rooms

            return rooms.run(settings, sections, args)
        if args.command == "recordings":
            from visio_cli import recordings

            return recordings.run(settings, args)
        if args.command == "db":
            from visio_cli import db

            return db.run(settings, args)
    except (SettingsError, AccountError, DatabaseError) as e:
        print(f"visio: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
