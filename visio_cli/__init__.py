"""The `visio` command: the composition root that starts and administers the stack."""
