"""Bad bytes in any parameter of any endpoint: a 400 error document, never a 5xx.

One real server (module-scoped, with small ``[requests]`` limits so that over-long
values and parameter floods fit in a URL) receives, over real HTTP, every route of
every protocol with a parameter whose name or value holds NUL, control characters,
invalid UTF-8 (percent-escaped, in urlencoded and multipart bodies, as multipart
field names), surrogates or over-long text; path parameters (job ids, table names)
get the same. The routes come from the protocols' routers, so a new route without
declared parameters fails :func:`test_every_route_is_covered`.
"""

from __future__ import annotations

import io
import time
from urllib.parse import quote, quote_from_bytes

import httpx
import pytest
from astropy.io.votable import parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import start_server, stop_server
from vo_service.datalink import routes as datalink_routes
from vo_service.getdata import routes as getdata_routes
from vo_service.ssa import routes as ssa_routes
from vo_service.tap import routes as tap_routes

VALUE_CHARS = 2_000
COUNT = 40
TOP1 = "SELECT TOP 1 table_name FROM tap_schema.tables"
TAP_QUERY = ["REQUEST", "LANG", "QUERY", "FORMAT", "RESPONSEFORMAT", "MAXREC", "RUNID",
             "UPLOAD", "VERSION"]
SSA = ["REQUEST", "VERSION", "POS", "SIZE", "BAND", "TIME", "FORMAT", "MAXREC", "TOP",
       "TARGETNAME", "TARGETCLASS", "COLLECTION", "PUBDID", "CREATORDID", "REDSHIFT", "SPECRP",
       "SNR", "MTIME", "TEFF", "LOGG", "MH", "ALPHA_M", "DOMAIN_SCORE_MAX", "IN_DOMAIN",
       "MODEL", "RUNID", "COMPRESS", "APERTURE"]
# (path, method) -> (parameters the protocol declares, plausible values sent beside the
# fuzzed one). Path parameters ({job_id}, {name}) are fuzzed too.
ROUTES: dict[tuple[str, str], tuple[list[str], dict[str, str]]] = {
    ("/", "GET"): ([], {}),
    ("/tap", "GET"): ([], {}),
    ("/tap/sync", "GET"): (TAP_QUERY, {"LANG": "ADQL", "QUERY": TOP1}),
    ("/tap/sync", "POST"): (TAP_QUERY, {"LANG": "ADQL", "QUERY": TOP1}),
    ("/tap/examples", "GET"): ([], {}),
    ("/tap/capabilities", "GET"): ([], {}),
    ("/tap/availability", "GET"): ([], {}),
    ("/tap/tables", "GET"): (["detail"], {}),
    ("/tap/tables/{name}", "GET"): (["detail"], {}),
    ("/tap/async", "GET"): (["PHASE", "AFTER", "LAST"], {}),
    ("/tap/async", "POST"): ([*TAP_QUERY, "PHASE"], {"LANG": "ADQL", "QUERY": TOP1}),
    ("/tap/async/{job_id}", "GET"): (["WAIT", "PHASE"], {}),
    ("/tap/async/{job_id}", "DELETE"): ([], {}),
    ("/tap/async/{job_id}", "POST"): (["ACTION"], {}),
    ("/tap/async/{job_id}/phase", "GET"): ([], {}),
    ("/tap/async/{job_id}/phase", "POST"): (["PHASE"], {}),
    ("/tap/async/{job_id}/executionduration", "GET"): ([], {}),
    ("/tap/async/{job_id}/executionduration", "POST"): (["EXECUTIONDURATION"], {}),
    ("/tap/async/{job_id}/destruction", "GET"): ([], {}),
    ("/tap/async/{job_id}/destruction", "POST"): (["DESTRUCTION"], {}),
    ("/tap/async/{job_id}/quote", "GET"): ([], {}),
    ("/tap/async/{job_id}/owner", "GET"): ([], {}),
    ("/tap/async/{job_id}/error", "GET"): ([], {}),
    ("/tap/async/{job_id}/parameters", "GET"): ([], {}),
    ("/tap/async/{job_id}/parameters", "POST"): (TAP_QUERY, {}),
    ("/tap/async/{job_id}/parameters/{name}", "GET"): ([], {}),
    ("/tap/async/{job_id}/results", "GET"): ([], {}),
    ("/tap/async/{job_id}/results/result", "GET"): ([], {}),
    ("/ssa", "GET"): (SSA, {"REQUEST": "queryData", "POS": "10,10", "SIZE": "0.5"}),
    ("/ssa", "POST"): (SSA, {"REQUEST": "queryData", "POS": "10,10", "SIZE": "0.5"}),
    ("/ssa/capabilities", "GET"): ([], {}),
    ("/ssa/availability", "GET"): ([], {}),
    ("/datalink/links", "GET"): (["ID", "RESPONSEFORMAT"], {"ID": "ivo://x.test/spec?1"}),
    ("/datalink/links", "POST"): (["ID", "RESPONSEFORMAT"], {"ID": "ivo://x.test/spec?1"}),
    ("/datalink/similar", "GET"): (["ID", "K", "MODEL", "RESPONSEFORMAT"],
                                   {"ID": "ivo://x.test/spec?1", "K": "3"}),
    ("/datalink/similar", "POST"): (["ID", "K", "MODEL", "RESPONSEFORMAT"],
                                    {"ID": "ivo://x.test/spec?1", "K": "3"}),
    ("/getdata", "GET"): (["ID", "FORMAT"], {"ID": "ivo://x.test/spec?1"}),
}

# Fragments no parameter may carry, as bytes on the wire: NUL, C0/C1 controls, DEL,
# invalid UTF-8 (lone continuation and lead bytes, overlong forms, an encoded
# surrogate), U+FFFD and U+FFFF as UTF-8.
BAD = [b"\x00", b"\x01", b"\x1b[31m", b"\x7f", b"\xc2\x85", b"\xff", b"\xfe\xff", b"\x80",
       b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xef\xbf\xbd", b"\xef\xbf\xbf", b"\xf4\x90\x80\x80"]
bad_bytes = st.one_of(
    st.sampled_from(BAD),
    st.binary(min_size=1, max_size=24),
    st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=12)
    .map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(VALUE_CHARS + 1, 3 * VALUE_CHARS).map(lambda n: b"x" * n),
)
plain = st.sampled_from([b"", b"10", b"queryData", b"ADQL", TOP1.encode(), b"ivo://x.test/a?1"])


def _values(fuzz: bytes) -> st.SearchStrategy[bytes]:
    return st.tuples(plain, st.just(fuzz), plain).map(b"".join)


@st.composite
def attacks(draw, names: list[str], has_path: bool):
    """``(target, name, value)``: bad bytes in a declared parameter's value, in a
    parameter's name, or (where the route has one) in a path parameter."""
    targets = ["value", "name"] + (["path"] if has_path else [])
    target = draw(st.sampled_from(targets))
    fuzz = draw(bad_bytes)
    if target == "path":  # one path segment: no "/" (another route), no dot segment
        return target, "", b"j" + draw(_values(fuzz)).replace(b"/", b"")
    if target == "name":
        return target, draw(_values(fuzz).filter(bool)), draw(plain)
    return target, draw(st.sampled_from(names or ["X"])), draw(_values(fuzz))


def _encode(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"&".join(quote_from_bytes(n, safe="").encode() + b"=" +
                     quote_from_bytes(v, safe="").encode() for n, v in pairs)


def _multipart(pairs: list[tuple[bytes, bytes]]) -> tuple[bytes, str]:
    boundary = b"latentvo-fuzz-7d1c"
    parts = [b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + n +
             b'"\r\n\r\n' + v + b"\r\n" for n, v in pairs]
    return b"".join(parts) + b"--" + boundary + b"--\r\n", \
        f"multipart/form-data; boundary={boundary.decode()}"


@pytest.fixture(scope="module")
def fuzz_server(database, latentvo_env):
    """A server with small parameter limits, and a COMPLETED async job to address."""
    proc, url = start_server({**latentvo_env, "LATENTVO_REQUESTS_VALUE_CHARS": str(VALUE_CHARS),
                              "LATENTVO_REQUESTS_PARAMETERS": str(COUNT)})
    try:
        created = httpx.post(url + "/tap/async", data={"LANG": "ADQL", "QUERY": TOP1,
                                                       "PHASE": "RUN"})
        job = created.headers["location"].rsplit("/", 1)[1]
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/tap/async/{job}/phase").text != "COMPLETED":
            assert time.monotonic() < deadline, "the fixture's job did not complete"
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client, job
    finally:
        stop_server(proc)


def _routes() -> set[tuple[str, str]]:
    found = {("/", "GET")}
    for module in (tap_routes, ssa_routes, datalink_routes, getdata_routes):
        for route in module.router.routes:
            found |= {(route.path, m) for m in route.methods if m != "HEAD"}  # type: ignore[attr-defined]
    return found


def test_every_route_is_covered():
    """Each route of the application has its parameters declared in :data:`ROUTES`."""
    assert _routes() == set(ROUTES)


def assert_error_document(response: httpx.Response) -> None:
    """No 5xx; a 4xx is the protocol's VOTable error document."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/x-votable+xml"), \
            (response.status_code, response.text[:300])
        infos = {i.name: i.value for i in parse(io.BytesIO(response.content)).resources[0].infos}
        assert infos["QUERY_STATUS"] == "ERROR"


def send(client: httpx.Client, job: str, route: tuple[str, str], attack,
         transport: str) -> httpx.Response:
    path, method = route
    target, name, value = attack
    segment = quote_from_bytes(value, safe="") if target == "path" else None
    if "{job_id}" in path:  # the fuzzed segment; DELETE never addresses the fixture's job
        path = path.replace("{job_id}", segment or ("no-such-job" if method == "DELETE"
                                                    else job))
        path = path.replace("{name}", "t1")
    path = path.replace("{name}", segment or "tap_schema.tables")
    pairs = [(k.encode(), v.encode()) for k, v in ROUTES[route][1].items()]
    if target in ("value", "name"):
        fuzz_name = name if isinstance(name, bytes) else name.encode()
        pairs = [p for p in pairs if p[0] != fuzz_name] + [(fuzz_name, value)]
    if method in ("GET", "DELETE") or transport == "query":
        return client.request(method, path + "?" + _encode(pairs).decode())
    if transport == "multipart":
        body, ctype = _multipart(pairs)
    else:
        body, ctype = _encode(pairs), "application/x-www-form-urlencoded"
    return client.request(method, path, content=body, headers={"content-type": ctype})


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[1]} {r[0]}")
def test_bad_bytes_answer_an_error_document(fuzz_server, route):
    client, job = fuzz_server
    names, _ = ROUTES[route]

    @settings(max_examples=30 if names else 15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(attack=attacks(names, "{" in route[0]),
           transport=st.sampled_from(["query", "urlencoded", "multipart"]))
    def probe(attack, transport):
        assert_error_document(send(client, job, route, attack, transport))

    probe()


@pytest.mark.parametrize(("path", "name"), [
    ("/datalink/links", "ID"), ("/datalink/similar", "ID"), ("/getdata", "ID"),
    ("/ssa", "PUBDID"), ("/ssa", "TARGETNAME"), ("/ssa", "RUNID"), ("/tap/sync", "QUERY"),
    ("/tap/sync", "RUNID"), ("/tap/async", "QUERY"), ("/tap/async", "RUNID"),
])
@pytest.mark.parametrize("fragment", ["%00", "%FF", "%C3%28", "%1B"])
def test_refused_bytes_are_a_400(fuzz_server, path, name, fragment):
    """NUL (which PostgreSQL refuses: a plain-text 500 before), invalid UTF-8 and control
    characters in the parameters that reach the database: 400 with the error document
    naming the parameter."""
    client, _ = fuzz_server
    method = "POST" if path == "/tap/async" else "GET"
    base = {**ROUTES[(path, method)][1]}
    base.setdefault(name, "abc")
    query = "&".join(f"{k}={quote(v, safe='')}{fragment if k == name else ''}"
                     for k, v in base.items())
    response = client.request(method, f"{path}?{query}")
    assert response.status_code == 400, response.text[:300]
    assert_error_document(response)
    assert name.encode() in response.content or b"UTF-8" in response.content
    # In the endpoint's own error form: SSA's SERVICE_PROTOCOL, DataLink's fault code.
    infos = {i.name: i for i in parse(io.BytesIO(response.content)).resources[0].infos}
    if path == "/ssa":
        assert infos["SERVICE_PROTOCOL"].value == "1.1"
    if path.startswith(("/datalink", "/getdata")):
        assert infos["QUERY_STATUS"].content.startswith("UsageFault: ")


def test_limits_on_length_and_count(fuzz_server):
    """Over-long values and too many parameters: 400 naming the limit; QUERY is exempt
    from the value limit (the ADQL length limit is its own)."""
    client, _ = fuzz_server
    long = client.get("/ssa", params={"REQUEST": "queryData", "TARGETNAME": "x" * 3000})
    assert long.status_code == 400 and f"{VALUE_CHARS:,}".encode() in long.content
    assert_error_document(long)
    many = client.post("/tap/sync", data={f"P{i}": "1" for i in range(COUNT + 1)})
    # (a body is counted while it arrives: one parameter too many there is a 413)
    assert many.status_code in (400, 413) and f"{COUNT:,}".encode() in many.content
    assert_error_document(many)
    query = TOP1 + " " * (VALUE_CHARS + 10)
    ok = client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": query})
    assert ok.status_code == 200, ok.text[:300]


def test_path_parameters_are_checked(fuzz_server):
    """A job id with NUL or invalid UTF-8 is a 400 document, not a database error."""
    client, _ = fuzz_server
    for job_id in ("%00", "ab%00cd", "%FF", "%C0%AF"):
        for suffix in ("", "/phase", "/results/result", "/parameters/t1"):
            response = client.get(f"/tap/async/{job_id}{suffix}")
            assert response.status_code == 400, (job_id, suffix, response.text[:200])
            assert_error_document(response)
    response = client.delete("/tap/async/%00")
    assert response.status_code == 400
    assert_error_document(response)
