"""Directory reading into the accounts store (LDAP issue)."""
