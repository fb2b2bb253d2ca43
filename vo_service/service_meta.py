"""Service and publisher metadata from ``service.toml`` of the package ``vo_service.resources``.

The file lives in the repository's top-level ``resources/`` folder and is installed as
package data (``pyproject.toml`` maps the folder to ``vo_service.resources``), so an
installed service reads it through :mod:`importlib.resources` wherever it runs.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True)
class ServiceMeta:
    """Who publishes the service and what it holds, as shown on its pages and VOSI documents."""

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
def service_meta() -> ServiceMeta:
    """The packaged ``service.toml`` (read once per process), description on one line."""
    text = files("vo_service.resources").joinpath("service.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    data["subjects"] = tuple(data.get("subjects", ()))
    data["description"] = " ".join(data["description"].split())
    return ServiceMeta(**data)
