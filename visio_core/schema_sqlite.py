"""The SQLite schema, one script per version (`PRAGMA user_version` counts them).

Versions 1 to 8 are exactly what earlier releases applied, so an existing
var/visio.sqlite3 upgrades in place; schema_postgresql.py holds the same
versions for PostgreSQL. A new version goes at the end of both lists.
"""

from __future__ import annotations

SQLITE: list[str] = [
    # version 1
    """
    CREATE TABLE accounts (
        login TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        entity TEXT NOT NULL DEFAULT '',
        password_hash TEXT,
        source TEXT NOT NULL DEFAULT 'local',
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
    );
    CREATE TABLE account_addresses (
        address TEXT PRIMARY KEY,          -- lower-cased e-mail address
        login TEXT NOT NULL REFERENCES accounts(login) ON DELETE CASCADE
    );
    CREATE TABLE rooms (
        room_id TEXT PRIMARY KEY,
        uid TEXT NOT NULL,
        owner TEXT NOT NULL,
        calendar_path TEXT NOT NULL,
        href TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('video', 'audio')),
        options TEXT NOT NULL DEFAULT '{}',
        token_hash TEXT NOT NULL UNIQUE,
        room_number TEXT NOT NULL UNIQUE,
        summary TEXT NOT NULL DEFAULT '',
        event TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
    );
    CREATE UNIQUE INDEX rooms_owner_uid ON rooms (owner, uid);
    CREATE INDEX rooms_calendar ON rooms (calendar_path);
    """,
    # version 2: scheduling (invitations issue)
    """
    CREATE TABLE itip_changes (
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        uid TEXT NOT NULL,
        organizer TEXT NOT NULL,
        organizer_name TEXT NOT NULL DEFAULT '',
        room_id TEXT,
        calendar TEXT NOT NULL,          -- the organizer's copy, join link replaced
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        change_id INTEGER NOT NULL REFERENCES itip_changes(id),
        uid TEXT NOT NULL,
        recurrence_id TEXT NOT NULL DEFAULT '',
        sequence INTEGER NOT NULL,
        method TEXT NOT NULL,
        recipient TEXT NOT NULL,
        is_update INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
        sent_at TEXT,
        UNIQUE (uid, recurrence_id, sequence, method, recipient)
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE TABLE attendee_links (
        token_hash TEXT PRIMARY KEY,
        room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        UNIQUE (room_id, address)
    );
    CREATE TABLE rsvp_links (
        token_hash TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        uid TEXT NOT NULL,
        address TEXT NOT NULL,
        UNIQUE (owner, uid, address)
    );
    """,
    # version 3: every save of an organizer's copy asks the outbox about its UID
    """
    CREATE INDEX outbox_uid ON outbox (uid, recipient);
    """,
    # version 4: RSVP tokens are signed and carry their subject; no table needed
    """
    DROP TABLE rsvp_links;
    """,
    # version 5: the agenda, an index of every calendar's occurrences kept by the storage
    # plugin in the same transaction as the event, so the portal's views read it at once
    """
    CREATE TABLE agenda_calendars (
        calendar_path TEXT PRIMARY KEY,
        indexed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
    );
    CREATE TABLE agenda_items (
        calendar_path TEXT NOT NULL,
        href TEXT NOT NULL,
        recurring INTEGER NOT NULL,
        covered_from INTEGER NOT NULL,  -- series: expanded over this window (epoch seconds)
        covered_to INTEGER NOT NULL,
        PRIMARY KEY (calendar_path, href)
    );
    -- One row per occurrence, everything a view shows: no join when reading a month.
    CREATE TABLE agenda (
        calendar_path TEXT NOT NULL,
        href TEXT NOT NULL,
        uid TEXT NOT NULL,
        organizer TEXT NOT NULL,
        recurring INTEGER NOT NULL,
        start INTEGER NOT NULL,  -- epoch seconds; floating times and dates as if in UTC
        end INTEGER NOT NULL,
        timing INTEGER NOT NULL,  -- 0 UTC, 1 floating, 2 date
        rid INTEGER NOT NULL,
        rid_timing INTEGER NOT NULL,
        long INTEGER NOT NULL,
        title TEXT NOT NULL,
        kind TEXT NOT NULL
    );
    CREATE INDEX agenda_when ON agenda (calendar_path, start);
    CREATE INDEX agenda_long ON agenda (calendar_path, long, start);
    CREATE INDEX agenda_item ON agenda (calendar_path, href);
    """,
    # version 6: meeting recordings (one per room occurrence, one file per segment)
    """
    CREATE TABLE recordings (
        id INTEGER PRIMARY KEY,
        room_id TEXT NOT NULL,             -- no foreign key: a recording outlives its room
        occurrence TEXT NOT NULL,
        owner TEXT NOT NULL,               -- login of the organizer, the only one served
        summary TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'recording' CHECK (state IN ('recording', 'done')),
        notified INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
        ended_at TEXT,
        UNIQUE (room_id, occurrence)
    );
    CREATE TABLE recording_segments (
        id INTEGER PRIMARY KEY,
        recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
        ended_at TEXT
    );
    CREATE INDEX recording_segments_of ON recording_segments (recording_id);
    """,
    # version 7: storage writes in flight (caldav_plugin/journal.py), so a server killed
    # between an event's file and its registry row is repaired at the next start
    """
    CREATE TABLE pending_writes (
        calendar_path TEXT NOT NULL,
        href TEXT NOT NULL,                -- '': the whole collection and below
        uid TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (calendar_path, href, uid)
    );
    """,
    # version 8: portal sessions known server-side (sign-out ends one; a password change,
    # a disabled or deleted account ends all, whichever tool made the change: triggers),
    # and password reset requests sent by the mail worker, never inside the request
    """
    CREATE TABLE portal_sessions (
        id_hash TEXT PRIMARY KEY,          -- SHA-256 of the id held in the session cookie
        login TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX portal_sessions_login ON portal_sessions (login);
    CREATE TRIGGER portal_sessions_disabled AFTER UPDATE OF disabled ON accounts
        WHEN NEW.disabled != 0 AND OLD.disabled = 0
        BEGIN UPDATE portal_sessions SET revoked = 1 WHERE login = NEW.login; END;
    CREATE TRIGGER portal_sessions_password AFTER UPDATE OF password_hash ON accounts
        WHEN NEW.password_hash IS NOT OLD.password_hash
        BEGIN UPDATE portal_sessions SET revoked = 1 WHERE login = NEW.login; END;
    CREATE TRIGGER portal_sessions_deleted AFTER DELETE ON accounts
        BEGIN DELETE FROM portal_sessions WHERE login = OLD.login; END;
    CREATE TABLE reset_requests (
        id INTEGER PRIMARY KEY,
        login TEXT NOT NULL,               -- as typed: a row whether or not the account exists
        language TEXT NOT NULL,
        requested_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'sent', 'skipped', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX reset_requests_login ON reset_requests (login, requested_at);
    CREATE INDEX reset_requests_due ON reset_requests (state, next_attempt_at);
    """,
    # version 9: several machines. The directory-sync tables join the shared versions
    # (IF NOT EXISTS: ldap_sync created them itself before); outbox rows and reset
    # requests are claimed by one mail worker for a while (`claimed_until`, epoch s).
    """
    CREATE TABLE IF NOT EXISTS ldap_accounts (
        login TEXT PRIMARY KEY REFERENCES accounts(login) ON DELETE CASCADE,
        dn TEXT NOT NULL,
        may_book INTEGER NOT NULL DEFAULT 1,
        left_directory INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS ldap_accounts_dn ON ldap_accounts (dn);
    CREATE TABLE IF NOT EXISTS ldap_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    ALTER TABLE outbox ADD COLUMN claimed_until REAL NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
    ALTER TABLE reset_requests ADD COLUMN claimed_until REAL NOT NULL DEFAULT 0;
    """,
]
