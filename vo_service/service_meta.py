"""Service and publisher metadata from ``resources/service.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

RESOURCE = Path(__file__).resolve().parent.parent / "resources" / "service.toml"


@dataclass(frozen=True)
class ServiceMeta:
    title: str
    short_name: str
    description: str
    publisher: str
    creator: str
    contact_name: str
    contact_email: str
    subjects: tuple[str, ...]
    rights: str


@cache
def service_meta(path: Path = RESOURCE) -> ServiceMeta:
    data = tomllib.loads(path.read_text())
    data["subjects"] = tuple(data.get("subjects", ()))
    data["description"] = " ".join(data["description"].split())
    return ServiceMeta(**data)
