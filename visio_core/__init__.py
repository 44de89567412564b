"""Pure domain code shared by the CalDAV plugin and the conference backend."""
