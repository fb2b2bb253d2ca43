"""The IVOA ADQL conformance queries (lyonetia) are accepted or rejected as marked.

The queries name tables (``stars``, ``ivoa.obscore`` ...) this service does not
have, so this checks the grammar and the function rules: a valid query must
parse (with the UDFs its file declares), an invalid one must be rejected;
:data:`AGAINST_THE_BNF` lists the queries whose mark the ADQL 2.1 BNF contradicts.
The optional features we declare (geometry, strings, CTEs, sets, CAST,
COALESCE, IN_UNIT, OFFSET, UDFs) are all covered by the O*.xml files.
"""

from __future__ import annotations

import collections
import statistics
import time

from vo_service.adql import ADQLError, parse
from vo_service.adql.features import UDF_NAMES

# Queries the suite marks against ADQL 2.1's own BNF (ADQL-2.1.bnf beside it), with
# the verdict the BNF gives. <qualified_join> ::= <table_reference> [NATURAL]
# [<join_type>] JOIN <table_reference> [<join_specification>]: the specification is
# optional, and this service joins on the common columns (NATURAL) without one.
AGAINST_THE_BNF = {
    "d4c3a72c-4458-11e6-96e2-28b2bdcff70b": True,  # SELECT * FROM t1 INNER JOIN t2
}


def _expected(q) -> bool:
    return AGAINST_THE_BNF.get(q.uuid, q.valid)


def _verdict(q) -> tuple[bool, str | None]:
    try:
        parse(q.adql, udfs=set(q.functions) | UDF_NAMES)
    except ADQLError as exc:
        return False, str(exc)
    return True, None


def test_suite_accepts_and_rejects_as_marked(suite):
    per_file = collections.defaultdict(lambda: [0, 0])
    wrong = []
    for q in suite:
        accepted, error = _verdict(q)
        per_file[q.file][1] += 1
        if accepted == _expected(q):
            per_file[q.file][0] += 1
        else:
            wrong.append(f"{q.file} {q.uuid} valid={_expected(q)}: {' '.join(q.adql.split())[:120]}"
                         f" -> {error}")
    ok = sum(v[0] for v in per_file.values())
    n_valid = sum(q.valid for q in suite)
    print(f"\nADQL suite: {ok}/{len(suite)} as marked ({n_valid} valid, "
          f"{len(suite) - n_valid} invalid)")
    for name, (good, total) in sorted(per_file.items()):
        print(f"  {name}: {good}/{total}")
    assert not wrong, "\n".join(wrong)


def test_suite_parse_is_fast(suite):
    parse("SELECT 1 FROM t")  # build the parser once
    times = []
    for q in suite:
        if q.valid:
            start = time.perf_counter()
            parse(q.adql)
            times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.002
