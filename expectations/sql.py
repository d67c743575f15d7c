"""Quoting for the few places where DuckDB takes no bound parameter (identifiers, COMMENT ON).

Identifiers come from the contracts (reviewed code), never from department files; they are
quoted all the same.
"""


def quote(identifier: str) -> str:
    """A SQL identifier, double-quoted (DuckDB / PostgreSQL rules)."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal, single-quoted."""
    return "'" + text.replace("'", "''") + "'"
