"""Reading the IVOA ADQL conformance suite (lyonetia) from ../shared/adql-suite.

The suite is GPL data and is never copied into this repository; tests that
need it take it from the ``shared`` fixture, and skip when the folder is absent.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

# Where the suite lies under ../shared, and what a skipped test names as missing.
SUITE_DIR = "adql-suite"
SUITE_NAME = "the IVOA ADQL conformance suite (lyonetia)"


@dataclass(frozen=True)
class SuiteQuery:
    file: str
    uuid: str
    description: str
    adql: str
    valid: bool
    functions: tuple[str, ...]  # UDF names the file or query declares


def _function_names(element) -> list[str]:
    fn = element.find("functions")
    if fn is None:
        return []
    return [f.findtext("form").split("(")[0].strip() for f in fn.findall("function")]


def load_suite(directory: Path) -> list[SuiteQuery]:
    queries = []
    for path in sorted(directory.glob("*.xml")):
        root = ET.parse(path).getroot()
        file_functions = _function_names(root)
        for q in root.findall("query"):
            adql = q.find("adql")
            queries.append(SuiteQuery(
                file=path.name,
                uuid=q.get("uuid"),
                description=" ".join((q.findtext("description") or "").split()),
                adql=adql.text or "",
                valid=adql.get("valid", "false").lower() == "true",
                functions=tuple(file_functions + _function_names(q)),
            ))
    return queries
