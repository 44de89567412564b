"""LDAP sync cost: a full sync of 10,000 people, then an incremental one after 100 changes.

A throwaway slapd (tests/support/slapd.py) is loaded with generated people in
two OUs, with alternative addresses and a booking group; the sync runs as
`visio ldap-sync` and `visio serve` run it (same code, in this process),
provisioning calendars through the product's Radicale storage (fsync on, as
in production). Between the runs 100 people change (name, entity, addresses;
some leave the filter). Prints each time and the ratio incremental/full
(target: <= 0.1), plus a repeated full pass with no change, which is what the
periodic full pass costs once everyone is provisioned.

    .venv/bin/python bench/ldap_sync.py [--people 10000] [--changes 100]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ldap3 import MODIFY_REPLACE  # noqa: E402

from tests.support import slapd as S  # noqa: E402
from visio_cli.ldap import build_syncer  # noqa: E402
from visio_core import settings as settings_mod  # noqa: E402
from visio_core.db import Database  # noqa: E402
from visio_core.settings import Settings  # noqa: E402

PASSWORD = "bench-Passw0rd"
FILTER = "(&(objectClass=inetOrgPerson)(!(employeeType=disabled)))"


def timed_sync(settings: Settings, sections: dict[str, dict[str, str]], db: Database, full: bool):
    syncer = build_syncer(settings, sections, db)
    started = time.perf_counter()
    report = syncer.run(full=full)
    return time.perf_counter() - started, report.summary()


def change_people(slapd: S.Slapd, people: list[S.Person], count: int) -> None:
    step = max(1, len(people) // count)
    with slapd.admin() as conn:
        for n, person in enumerate(people[::step][:count]):
            if n % 10 == 0:  # one in ten leaves (the filter excludes them)
                changes = {"employeeType": ["disabled"]}
            else:
                changes = {
                    "displayName": [f"Changed {n}"],
                    "ou": ["Marseille"],
                    "mailAlternateAddress": [f"changed{n}@example.org"],
                }
            conn.modify(person.dn, {k: [(MODIFY_REPLACE, v)] for k, v in changes.items()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="visio-bench-ldap-") as tmp:
        root = Path(tmp)
        people = S.generate_people(args.people, PASSWORD)
        ldif = S.base_ldif(people, people[:500])
        with contextlib.contextmanager(S.running_slapd)(root / "slapd", ldif) as slapd:
            env = {k: v for k, v in os.environ.items() if not k.startswith("VISIO_")}
            env.update(
                VISIO_CONFIG=str(ROOT / "radicale.conf"),
                VISIO_DATA_DIR=str(root / "var"),
                VISIO_LDAP_URI=slapd.uri,
                VISIO_LDAP_BASE=S.SUFFIX,
                VISIO_LDAP_BIND_DN=S.READER_DN,
                VISIO_LDAP_BIND_PASSWORD=S.READER_PASSWORD,
                VISIO_LDAP_FILTER=FILTER,
                VISIO_LDAP_BOOKING_GROUP=S.GROUP_DN,
            )
            settings, sections = settings_mod.load(env)
            db = Database(settings.database)
            full_s, text = timed_sync(settings, sections, db, full=True)
            print(f"full sync, {args.people} people:  {full_s:7.2f} s   {text}")
            again_s, text = timed_sync(settings, sections, db, full=True)
            print(f"full sync again, no change: {again_s:7.2f} s   {text}")
            change_people(slapd, people, args.changes)
            inc_s, text = timed_sync(settings, sections, db, full=False)
            print(f"incremental, {args.changes} changes:   {inc_s:7.2f} s   {text}")
            print(f"ratio incremental / full:       {inc_s / full_s:.4f}  (target <= 0.1)")
            print(f"ratio incremental / full again: {inc_s / again_s:.4f}")
            db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
