"""The IVOA identifiers of this site's resources, all under ``Settings.authority``.

Agreed between the registry, RegTAP, release and citation code: the registry
``<authority>/registry``, the services ``/tap`` and ``/ssa``, the collections
``/spectra`` and ``/ml``, a published catalogue ``/catalogue/<schema>.<table>``
and a data release ``/release/<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identifiers:
    """The identifiers under one ``authority`` (``ivo://...``, no trailing slash)."""

    authority: str

    @property
    def authority_id(self) -> str:
        """The authority without ``ivo://``, as ``managedAuthority`` names it."""
        return self.authority.removeprefix("ivo://")

    @property
    def registry(self) -> str:
        return f"{self.authority}/registry"

    @property
    def tap(self) -> str:
        return f"{self.authority}/tap"

    @property
    def ssa(self) -> str:
        return f"{self.authority}/ssa"

    @property
    def spectra(self) -> str:
        return f"{self.authority}/spectra"

    @property
    def ml(self) -> str:
        return f"{self.authority}/ml"

    def catalogue(self, qualified_name: str) -> str:
        """A published catalogue, by its ``schema.table`` name."""
        return f"{self.authority}/catalogue/{qualified_name}"

    def release(self, name: str) -> str:
        return f"{self.authority}/release/{name}"
