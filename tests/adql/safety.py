"""What may appear in generated SQL: a check shared by the safety and fuzz tests."""

from __future__ import annotations

import re

# every function or keyword the translator itself writes before "("
ALLOWED_CALLS = frozenset("""
ln log exp sqrt acos asin atan atan2 cos cot sin tan power degrees radians pi abs ceil floor
round trunc mod random setseed count min max avg sum lower upper coalesce nullif cast sind
cosd least greatest to_tsvector plainto_tsquery string_to_array string_agg extract
regexp_split_to_array btrim vector varchar char any array
and or not in exists as between on then else when from select where distinct all union
except intersect join is like ilike with by group order having case double precision
integer bigint smallint real timestamp text numeric
""".split())

_QUOTED = re.compile(r"""E?'(?:[^']|'')*'|"(?:[^"]|"")*\"""")
_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def check_sql(sql: str) -> None:
    """Raise AssertionError unless ``sql`` is one statement calling only whitelisted names."""
    bare = _QUOTED.sub(" ", sql)
    assert ";" not in bare, sql
    assert "--" not in bare and "/*" not in bare, sql
    assert "$" not in bare, sql
    calls = {m.group(1).lower() for m in _CALL.finditer(bare)}
    assert calls <= ALLOWED_CALLS, (calls - ALLOWED_CALLS, sql)
    words = set(re.findall(r"[A-Za-z_]+", bare.upper()))
    assert not words & {"INSERT", "UPDATE", "DELETE", "DROP", "CREATE", "ALTER", "GRANT",
                        "TRUNCATE", "COPY", "EXECUTE", "CALL", "DO", "SET", "INTO"}, sql
