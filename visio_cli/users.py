"""`visio users add|list|disable|enable`."""

from __future__ import annotations

import argparse
import getpass
import sys

from visio_core.accounts import AccountError, Accounts
from visio_core.db import Database
from visio_core.settings import Settings


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise AccountError("the two passwords differ")
    if not password:
        raise AccountError("empty password")
    return password


def run(settings: Settings, args: argparse.Namespace) -> int:
    accounts = Accounts(Database(settings.database))
    if args.action == "add":
        account = accounts.add(
            args.login.strip(),
            args.email,
            args.name,
            _read_password(args.password_stdin),
            entity=args.entity,
        )
        print(f"account {account.login} <{account.email}> created")
        return 0
    if args.action == "list":
        for a in accounts.list(disabled=True if args.disabled else None):
            state = "disabled" if a.disabled else "active"
            print("\t".join((a.login, a.email, a.name, a.entity or "-", state)))
        return 0
    if args.action in ("disable", "enable"):
        accounts.set_disabled(args.login, args.action == "disable")
        print(f"account {args.login} {args.action}d")
        return 0
    return 2
