"""Event data printed in a terminal column."""


def one_line(value: str) -> str:
    """Tabs, line breaks and other controls become spaces: one record, one line."""
    return " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in value).split())
