"""``/getdata``: one spectrum, as stored or converted (see the package docstring).

Errors are DataLink-style error documents (``UsageFault``, ``NotFoundFault``,
``FatalFault``), written by the one handler of :mod:`vo_service.web`. A conversion
not cached yet runs in a query slot (:mod:`vo_service.admission`); stored files
and cached conversions are sent at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from vo_service.archive.store import FileStore
from vo_service.dali import DALIError
from vo_service.db.database import Database
from vo_service.getdata.convert import (
    FORMAT_ALIASES,
    NATIVE,
    REPRESENTATIONS,
    ConversionError,
    Converter,
)
from vo_service.getdata.lookup import SpectrumLookup
from vo_service.getdata.previews import PreviewPool
from vo_service.web import ErrorForm, checked_parameters, error_form, run_in_slot

router = APIRouter(dependencies=[error_form(ErrorForm(fault_codes=True)), checked_parameters()])
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class GetData:
    """The file store, spectra by DID and the converter (shared with DataLink)."""

    store: FileStore
    lookup: SpectrumLookup
    converter: Converter
    previews: PreviewPool


def install(app: FastAPI, database: Database) -> None:
    """Mount ``/getdata``; :func:`stop` ends its preview workers."""
    settings = database.settings
    store = FileStore(settings.store_dir)
    previews = PreviewPool(settings.preview_workers)
    app.state.getdata = GetData(
        store=store, lookup=SpectrumLookup(database.reader_engine),
        converter=Converter(store, settings.home / "cache" / "getdata", previews.render),
        previews=previews)
    app.include_router(router)


def stop(app: FastAPI) -> None:
    """Stop the preview worker processes (when the application stops)."""
    app.state.getdata.previews.close()


def _single(request: Request, name: str) -> str | None:
    values = [v for k, v in request.query_params.multi_items() if k.upper() == name]
    if len(set(values)) > 1:
        raise DALIError(f"parameter {name} may be given only once")
    return values[0] if values else None


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def _download_name(file_name: str, key: str, obs_id: str) -> str:
    if key == NATIVE:
        return file_name
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in obs_id)
    return f"{safe}.{REPRESENTATIONS[key].extension}"


@router.api_route("/getdata", methods=["GET", "HEAD"])
async def getdata(request: Request) -> Response:
    """One spectrum by publisher DID (``ID``), as stored or converted (``FORMAT``)."""
    state: GetData = request.app.state.getdata
    did = _single(request, "ID")
    if not did:
        raise DALIError("ID is missing: give the publisher DID of a spectrum "
                        "(obs_publisher_did)")
    fmt = (_single(request, "FORMAT") or NATIVE).strip()
    key = FORMAT_ALIASES.get(fmt.lower().replace(" ", ""))
    if key is None:
        raise DALIError(f"unknown FORMAT {fmt!r}; this service offers: native, votable "
                        "(application/x-votable+xml), fits (application/fits), png "
                        "(image/png)")
    record = state.lookup.cached(did)
    if record is None:
        record = await run_in_threadpool(state.lookup.one, did)
    if record is None:
        raise DALIError(f"NotFoundFault: no spectrum with ID {did!r}", 404)
    headers = {"Content-Disposition":
               f'inline; filename="{_download_name(record.file_name, key, record.obs_id)}"'}
    if key == NATIVE:
        path = state.store.path_for(record.file_sha256)
        if not path.exists():
            raise DALIError("the stored file of this spectrum is missing", 500)
        if record.file_name.lower().endswith(".gz") or _is_gzip(path):
            headers["Content-Encoding"] = "gzip"
        return FileResponse(path, media_type=record.access_format, headers=headers)
    cached = state.converter.cached_path(record.file_sha256, key)
    if not cached.exists():
        try:
            cached = await run_in_slot(request, state.converter.path, record.file_sha256,
                                       key, record.title)
        except ConversionError as exc:
            raise DALIError(str(exc), 500) from None
    return FileResponse(cached, media_type=REPRESENTATIONS[key].mime, headers=headers)
