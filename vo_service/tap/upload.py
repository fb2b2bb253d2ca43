"""TAP_UPLOAD: tables sent with a query, inline (``param:``) or by URL (http, https).

``UPLOAD`` values are ``name,URI`` pairs, repeated (DALI 1.1) or joined by
``;`` in one value (TAP 1.0, what pyvo sends). Inline content comes as a
multipart part whose form-field name is the one after ``param:``; URLs are
fetched by :mod:`vo_service.tap.upload_fetch` (public addresses only unless
allowed, redirects, size and time limits). Only ``param:``, ``http:`` and
``https:`` are accepted: no ``file:``, no ``ftp:``, nothing that reads the
server's own disk.

Each table is a VOTable (any serialisation: TABLEDATA, BINARY, BINARY2 -
astropy reads them all) whose FIELDs become the columns of
``TAP_UPLOAD.<name>``, with their names as given (delimited identifiers
work) and their datatype/arraysize/xtype, so ``SELECT * FROM TAP_UPLOAD.t``
round-trips what was sent. The rows become an Arrow table that the runner
loads into a temporary table of the query's own transaction.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vo_service.config import TAPLimits
from vo_service.dali import DALIError, Params
from vo_service.tap.runner import UploadTable
from vo_service.tap.upload_fetch import download

if TYPE_CHECKING:
    from astropy.io.votable.tree import Field

    from vo_service.adql.catalog import CatalogColumn

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SCHEMES = ("param", "http", "https")


@dataclass
class Upload:
    """One ``name,URI`` pair of the UPLOAD parameter."""

    name: str
    uri: str


@dataclass
class ParsedUpload:
    """An upload read: its columns for the ADQL catalog, its rows for the runner."""

    name: str
    columns: list[CatalogColumn]
    table: UploadTable


def upload_specs(params: Params) -> list[Upload]:
    """The (name, URI) pairs of every UPLOAD parameter value."""
    out: list[Upload] = []
    seen: set[str] = set()
    for value in params.all("UPLOAD"):
        for pair in value.split(";"):
            pair = pair.strip()
            if not pair:
                continue
            name, sep, uri = pair.partition(",")
            name, uri = name.strip(), uri.strip()
            if not sep or not name or not uri:
                raise DALIError(f"UPLOAD must be 'name,URI' pairs, got {pair!r}")
            if not _NAME.match(name):
                raise DALIError(f"upload table name {name!r} is not an ADQL regular identifier "
                                "(a letter followed by letters, digits or underscores)")
            scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
            if scheme not in SCHEMES:
                raise DALIError(f"upload {name}: URI scheme {scheme or uri!r} is not supported; "
                                "use param: (inline), http: or https:")
            if name.lower() in seen:
                raise DALIError(f"upload table name {name} is used twice")
            seen.add(name.lower())
            out.append(Upload(name, uri))
    return out


def fetch(upload: Upload, params: Params, limits: TAPLimits, budget: list[int]) -> bytes:
    """The bytes of one upload: a multipart part of the request, or a download.

    Parameters
    ----------
    upload
        The upload to read.
    params
        The request's parameters, whose files hold the inline uploads.
    limits
        The service's limits (download timeout, total upload size).
    budget
        A one-element list with the bytes the request's uploads may still take;
        reduced by this upload's size.

    Raises
    ------
    DALIError
        When the part is missing, the download fails, or the uploads are too large
        (413).
    """
    if upload.uri.lower().startswith("param:"):
        part = upload.uri[len("param:"):]
        data = params.file(part)
        if data is None:
            inline = params.single(part) if part in params else None
            if inline is None:
                raise DALIError(f"upload {upload.name}: no multipart part named {part!r} was "
                                "sent with this request")
            data = inline.encode()
    else:
        data = download(upload.name, upload.uri, limits, budget[0])
    budget[0] -= len(data)
    if budget[0] < 0:
        raise DALIError(f"uploads exceed this service's limit of {limits.upload_bytes:,} bytes",
                        413)
    return data


# -- VOTable -> Arrow + catalog columns --------------------------------------------

_SCALAR = {"boolean": pa.bool_(), "bit": pa.bool_(), "unsignedByte": pa.int16(),
           "short": pa.int16(), "int": pa.int32(), "long": pa.int64(), "float": pa.float32(),
           "double": pa.float64()}


def _arrow_column(column: np.ma.MaskedArray[Any, Any], field: Field, n: int) -> pa.Array:
    datatype = field.datatype
    xtype = (field.xtype or "").lower()
    data = np.ma.asarray(column)
    mask = np.ma.getmaskarray(column)
    if datatype in ("char", "unicodeChar"):
        values = data.filled("") if hasattr(data, "filled") else data
        flat_mask = mask if mask.ndim == 1 else mask.all(axis=tuple(range(1, mask.ndim)))
        items = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                 for v in np.asarray(values, dtype=object)]
        strings = pa.array(items, pa.string(), mask=flat_mask)
        if xtype in ("timestamp", "adql:timestamp"):
            cleaned = pc.utf8_trim_whitespace(strings)
            cleaned = pc.if_else(pc.equal(cleaned, ""), pa.scalar(None, pa.string()), cleaned)
            try:
                return pc.cast(pc.replace_substring(cleaned, " ", "T"), pa.timestamp("us"))
            except pa.ArrowInvalid:
                raise DALIError(f"uploaded column {field.name}: xtype timestamp values must "
                                "be ISO-8601 (YYYY-MM-DDThh:mm:ss)") from None
        return strings
    scalar = _SCALAR.get(datatype)
    if scalar is None:
        raise DALIError(f"uploaded column {field.name}: datatype {datatype} is not supported")
    if data.ndim > 1 or field.arraysize not in (None, "", "1"):
        rows: list[list[Any] | None] = []
        for i in range(n):
            cell = column[i]
            if np.ma.is_masked(cell) and np.ma.getmaskarray(cell).all():
                rows.append(None)
                continue
            arr = np.ma.asarray(cell).reshape(-1)
            rows.append([None if m else v for v, m in zip(arr.data.tolist(),
                                                          np.ma.getmaskarray(arr).tolist(),
                                                          strict=True)])
        return pa.array(rows, pa.list_(scalar))
    values = np.asarray(data.filled(0) if hasattr(data, "filled") else data)
    if scalar == pa.bool_():
        values = values.astype(bool)
    else:
        values = values.astype(values.dtype.newbyteorder("="))
    return pa.array(values, type=scalar, mask=mask if mask.any() else None)


def _check_width(name: str, data: bytes, limit: int) -> None:
    """Refuse a table with more than ``limit`` columns before its rows are parsed.

    Reads the document only up to the first table's DATA: an over-wide upload is
    refused for the cost of its header, not of the whole parse (astropy takes
    minutes on 10,000 columns) and not with PostgreSQL's error at 1,600 columns.
    Malformed documents are left to the parse, which names the problem.
    """
    from astropy.utils.xml.iterparser import get_xml_iterator

    columns = 0
    try:
        with get_xml_iterator(io.BytesIO(data)) as iterator:
            for start, tag, _, _ in iterator:
                if tag == "FIELD" and start:
                    columns += 1
                    if columns > limit:
                        break
                elif tag == "DATA" or (tag == "TABLE" and not start):
                    break
    except Exception:  # noqa: BLE001, S110 - the parse reports the document's errors
        pass
    if columns > limit:
        raise DALIError(f"upload {name}: more than {limit:,} columns; this service's limit "
                        f"is {limit:,} columns per table")


def parse_votable(name: str, data: bytes,
                  limits: TAPLimits) -> tuple[list[CatalogColumn], pa.Table]:
    """(catalog columns, Arrow table) of the first table of a VOTable document.

    Raises
    ------
    DALIError
        When the document is not a readable VOTable, holds no table, has more
        columns than the limit (400), more rows than the limit (413) or columns
        this service cannot load.
    """
    from astropy.io.votable import parse
    from astropy.io.votable.exceptions import VOWarning

    from vo_service.adql.catalog import CatalogColumn

    _check_width(name, data, limits.upload_columns)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VOWarning)
            warnings.simplefilter("ignore", UserWarning)
            document = parse(io.BytesIO(data), verify="ignore")
        table = document.get_first_table()
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds
        raise DALIError(f"upload {name}: not a readable VOTable ({exc})") from None
    if table is None:
        raise DALIError(f"upload {name}: the VOTable holds no TABLE")
    array = table.array
    n = len(array)
    if n > limits.upload_rows:
        raise DALIError(f"upload {name}: {n:,} rows exceed this service's limit of "
                        f"{limits.upload_rows:,} rows per table", 413)
    columns, arrays, names = [], [], []
    seen = set()
    for i, field in enumerate(table.fields):
        fname = field.name or field.ID or f"col{i + 1}"
        if fname.lower() in seen:
            raise DALIError(f"upload {name}: column name {fname!r} appears twice")
        seen.add(fname.lower())
        arraysize = field.arraysize if field.arraysize not in ("1",) else None
        xtype = field.xtype
        if xtype and xtype.lower() == "adql:timestamp":
            xtype = "timestamp"
        columns.append(CatalogColumn.from_votable(
            fname, field.datatype, arraysize, xtype, unit=str(field.unit) if field.unit
            else None, ucd=field.ucd, utype=field.utype,
            description=field.description))
        arrays.append(_arrow_column(array[array.dtype.names[i]], field, n))
        names.append(fname)
    return columns, pa.Table.from_arrays(arrays, names=names)


def load_uploads(params: Params, limits: TAPLimits) -> list[ParsedUpload]:
    """Read and parse every table of the request's UPLOAD parameter.

    Raises
    ------
    DALIError
        For a malformed UPLOAD value, too many or too large tables, or a table that
        cannot be read.
    """
    specs = upload_specs(params)
    if len(specs) > limits.upload_tables:
        raise DALIError(f"at most {limits.upload_tables} tables may be uploaded with a query")
    budget = [limits.upload_bytes]
    parsed = []
    for spec in specs:
        data = fetch(spec, params, limits, budget)
        columns, table = parse_votable(spec.name, data, limits)
        parsed.append(ParsedUpload(spec.name, columns, UploadTable(
            f"tap_upload_{spec.name.lower()}", table)))
    return parsed
