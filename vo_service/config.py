"""Service configuration: environment variables over one optional TOML file.

Every setting has a documented default (see ``docs/configuration.md``); an
environment variable ``LATENTVO_<NAME>`` overrides the file's ``<name>`` key.
The file is ``$LATENTVO_CONFIG`` if set, else ``$LATENTVO_HOME/latentvo.toml``
if it exists.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path


class ConfigError(RuntimeError):
    """An operator mistake in the configuration; the message says what to fix."""


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None = None  # external PostgreSQL (owner role); None = embedded
    reader_database_url: str | None = None  # read-only role; derived when None
    reader_role: str = "latentvo_reader"
    embedded_port: int = 0  # 0 = choose a free port on first start
    authority: str = "ivo://latentvo.example"  # IVOA authority of publisher DIDs
    base_url: str | None = None  # public URL of the web service; None = from each request
    preview_workers: int = 1  # PNG preview processes per web process
    collection: str = "latentvo"  # obs_collection of ingested spectra
    release: str = "dr1"  # data release new spectra are ingested into

    @property
    def store_dir(self) -> Path:
        """Content-addressed store of original spectrum files."""
        return self.home / "store"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def embedded(self) -> bool:
        return self.database_url is None


_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, value: object, origin: str) -> object:
    kind = _TYPES[name]
    try:
        if kind == "Path":
            return Path(str(value)).expanduser().resolve()
        if kind == "int":
            return int(value)  # type: ignore[arg-type]
        return None if value in ("", None) else str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: {name} must be {kind}, got {value!r}") from exc


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read the settings; raise :class:`ConfigError` for anything malformed."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("LATENTVO_HOME", "~/.latentvo")).expanduser().resolve()
    values: dict[str, object] = {"home": home}

    config_path = env.get("LATENTVO_CONFIG")
    path = Path(config_path).expanduser() if config_path else home / "latentvo.toml"
    if config_path and not path.is_file():
        raise ConfigError(f"LATENTVO_CONFIG points to {path}, which is not a file")
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        unknown = sorted(set(data) - set(_TYPES) - {"home"})
        if unknown:
            raise ConfigError(
                f"{path}: unknown setting(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(_TYPES))}"
            )
        for key, value in data.items():
            values[key] = _coerce(key, value, str(path))

    for name in _TYPES:
        var = f"LATENTVO_{name.upper()}"
        if var in env and name != "home":
            values[name] = _coerce(name, env[var], var)

    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.database_url and not settings.database_url.startswith("postgresql"):
        raise ConfigError(
            f"LATENTVO_DATABASE_URL must be a postgresql:// URL, got {settings.database_url!r}"
        )
    if not settings.authority.startswith("ivo://"):
        raise ConfigError(f"authority must start with ivo://, got {settings.authority!r}")
    return settings
