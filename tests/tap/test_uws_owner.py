"""Who owns a UWS job, the job list's filters, quotas and freed space (issue 16, findings 4, 5).

Anonymous clients own their jobs through a cookie (each ``httpx.Client`` keeps
its own cookie jar, as pyvo's ``requests.Session`` does); the job URL is the
capability for clients that keep no cookies. ``guarded`` is a server behind a
pretend authenticating proxy (``[uws] owner_header``) with small quotas.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from schema import migrate
from tests.conftest import run_cli, scratch_database, start_server, stop_server
from vo_service.config import TAPLimits, UWSSettings
from vo_service.dali import DALIError, Params
from vo_service.db.database import OWNER_ROLE
from vo_service.tap.owners import COOKIE, Owner
from vo_service.tap.uws import JobStore

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
QUERY = "SELECT TOP 10 spec_id, snr FROM mlspec.spectra ORDER BY spec_id"
VOTABLE = "application/x-votable+xml"
USER_HEADER = "X-Remote-User"
GUARDED_ENV = {
    "LATENTVO_UWS_OWNER_HEADER": USER_HEADER,
    "LATENTVO_UWS_OWNER_JOBS": "2",
    "LATENTVO_UWS_OWNER_BYTES": "1500000",
}


@pytest.fixture
def alice(tap_server, archive):
    with httpx.Client(base_url=tap_server, timeout=60) as client:
        yield client


@pytest.fixture
def bob(tap_server, archive):
    with httpx.Client(base_url=tap_server, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def guarded(tap_data, tap_env):
    """Base URL of a server whose proxy names the user in X-Remote-User, with small quotas."""
    proc, url = start_server({**tap_env, **GUARDED_ENV})
    yield url + "/tap"
    stop_server(proc)


def user(base: str, name: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=60, headers={USER_HEADER: name})


def post_job(client: httpx.Client, upload: bytes | None = None, **params) -> httpx.Response:
    data = {"LANG": "ADQL", "QUERY": QUERY, **params}
    if upload is None:
        return client.post("/async", data=data)
    data["UPLOAD"] = "t1,param:t1"
    return client.post("/async", data=data, files={"t1": ("t1.xml", upload, VOTABLE)})


def create(client: httpx.Client, upload: bytes | None = None, **params) -> str:
    response = post_job(client, upload, **params)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def job_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


def listing(client: httpx.Client, params=None) -> list[ET.Element]:
    response = client.get("/async", params=params)
    assert response.status_code == 200, response.text
    return list(ET.fromstring(response.content).iter(f"{UWS}jobref"))


def listed(client: httpx.Client, params=None) -> list[str]:
    return [ref.get("id") for ref in listing(client, params)]


def refused(response: httpx.Response, status: int, text: str) -> None:
    """A UWS/DALI error: the status, and a VOTable error document saying ``text``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(VOTABLE)
    assert b'name="QUERY_STATUS" value="ERROR"' in response.content
    assert text in response.text, response.text


def finish(client: httpx.Client, url: str) -> ET.Element:
    client.post(url + "/phase", data={"PHASE": "RUN"})
    doc = ET.fromstring(client.get(url, params={"WAIT": 10}).content)
    while doc.find(f"{UWS}phase").text in ("QUEUED", "EXECUTING"):
        doc = ET.fromstring(client.get(url, params={"WAIT": 10}).content)
    return doc


# -- finding 4: owners -----------------------------------------------------------------


def test_each_client_lists_only_its_own_jobs(alice, bob, tap_server):
    first = post_job(alice)
    assert first.status_code == 303
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/tap/async" in cookie
    assert "Secure" not in cookie  # the test server's public URL is http
    a_url, b_url = first.headers["location"], create(bob)
    token = alice.cookies[COOKIE]
    second = post_job(alice)  # with its token: the same one, renewed
    assert second.status_code == 303 and alice.cookies[COOKIE] == token
    assert second.headers["set-cookie"].startswith(f"{COOKIE}={token};")
    a_again = second.headers["location"]
    assert listed(alice) == [job_id(a_url), job_id(a_again)]
    assert job_id(b_url) not in listed(alice)
    assert listed(bob) == [job_id(b_url)]
    with httpx.Client(base_url=tap_server) as stranger:  # no token: sees nobody's jobs
        assert listed(stranger) == []
    # the token is never shown; an anonymous owner has no ownerId
    doc = alice.get(a_url)
    assert token not in doc.text and token not in alice.get("/async").text
    assert ET.fromstring(doc.content).find(f"{UWS}ownerId").get(XSI_NIL) == "true"
    assert alice.get(a_url + "/owner").text == ""
    for ref in listing(alice):
        alice.delete(tap_server + "/async/" + ref.get("id"))
    bob.delete(b_url)


def test_job_url_is_the_capability_and_ids_cannot_be_guessed(alice, tap_server):
    url = create(alice)
    ident = job_id(url)
    assert len(ident) >= 32 and ident.isalnum()  # 192 random bits
    # a client that keeps no cookies (TOPCAT) reads and changes its job through the URL
    assert httpx.get(url).status_code == 200
    assert httpx.post(url + "/parameters", data={"MAXREC": "3"}).status_code == 303
    # near misses and short ids are unknown jobs
    for guess in (ident[:-1] + ("a" if ident[-1] != "a" else "b"), ident[:16], "1"):
        refused(httpx.get(f"{tap_server}/async/{guess}"), 404, "no job")
        refused(httpx.delete(f"{tap_server}/async/{guess}"), 404, "no job")
    assert httpx.delete(url).status_code == 303
    assert alice.get(url).status_code == 404


def test_authenticated_owner_alone_reaches_its_jobs(guarded, archive):
    with user(guarded, "alice") as alice, user(guarded, "bob") as bob, \
            httpx.Client(base_url=guarded) as anonymous:
        response = post_job(alice)
        assert response.status_code == 303 and "set-cookie" not in response.headers
        url = response.headers["location"]
        doc = ET.fromstring(alice.get(url).content)
        assert doc.find(f"{UWS}ownerId").text == "alice"
        assert alice.get(url + "/owner").text == "alice"
        [ref] = listing(alice)
        assert ref.find(f"{UWS}ownerId").text == "alice"
        for other in (bob, anonymous):
            assert job_id(url) not in listed(other)
            for path in ("", "/phase", "/parameters", "/owner", "/results/result"):
                refused(other.get(url + path), 403, "belongs to another user")
            refused(other.post(url + "/phase", data={"PHASE": "RUN"}), 403, "another user")
            refused(other.post(url + "/destruction", data={"DESTRUCTION": "2030-01-01"}),
                    403, "another user")
            refused(other.post(url + "/parameters", data={"QUERY": "SELECT 1"}), 403,
                    "another user")
            refused(other.delete(url), 403, "another user")
            refused(other.post(url, data={"ACTION": "DELETE"}), 403, "another user")
        assert alice.get(url + "/phase").text == "PENDING"
        assert alice.delete(url).status_code == 303


def test_job_list_filters(alice, tap_server):
    urls = []
    for _ in range(3):
        urls.append(create(alice))
        time.sleep(0.01)
    first, middle, last = (job_id(u) for u in urls)
    alice.post(urls[1] + "/phase", data={"PHASE": "ABORT"})
    assert listed(alice) == [first, middle, last]  # oldest first
    assert listed(alice, {"LAST": 2}) == [last, middle]  # the newest, newest first
    assert listed(alice, {"LAST": 100}) == [last, middle, first]
    created = {ref.get("id"): ref.find(f"{UWS}creationTime").text for ref in listing(alice)}
    assert listed(alice, {"AFTER": created[first]}) == [middle, last]  # strictly after
    assert listed(alice, {"AFTER": created[last]}) == []
    assert listed(alice, {"PHASE": "ABORTED"}) == [middle]
    assert listed(alice, [("PHASE", "PENDING"), ("PHASE", "ABORTED")]) == [first, middle, last]
    assert listed(alice, [("PHASE", "PENDING"), ("LAST", "1")]) == [last]
    assert listed(alice, {"PHASE": "PENDING", "AFTER": created[first]}) == [last]
    for params, text in (({"LAST": "0"}, "LAST"), ({"LAST": "-1"}, "LAST"),
                         ({"LAST": "two"}, "LAST"), ({"AFTER": "yesterday"}, "ISO-8601"),
                         ({"PHASE": "NONSENSE"}, "PHASE")):
        refused(alice.get("/async", params=params), 400, text)
    for url in urls:
        alice.delete(url)


# -- finding 5: quotas and freed space ---------------------------------------------------


def test_owner_quotas_refuse_with_a_uws_error(guarded, archive, tap_env):
    home = Path(tap_env["LATENTVO_HOME"])
    with user(guarded, "carol") as carol:
        urls = [create(carol), create(carol)]
        refused(post_job(carol), 403, "quota exceeded: you have 2 unfinished jobs")
        carol.post(urls[0] + "/phase", data={"PHASE": "ABORT"})  # finished jobs do not count
        urls.append(create(carol))
        for url in urls:
            carol.delete(url)
        # stored bytes: uploads at creation and by a parameter post
        big = create(carol, os.urandom(1_400_000))
        assert (home / "tap-results" / job_id(big) / "uploads").is_dir()
        refused(post_job(carol, os.urandom(200_000)), 403, "quota exceeded: your jobs store")
        assert carol.get("/async").text.count("<uws:jobref") == 1  # nothing was created
        small = create(carol)
        refused(carol.post(small + "/parameters", data={"UPLOAD": "t2,param:t2"},
                           files={"t2": ("t2.xml", os.urandom(200_000), VOTABLE)}),
                403, "quota exceeded: your jobs store")
        assert not list((home / "tap-results" / job_id(small)).rglob("*.part"))
        # a result that would pass the quota ends its job in ERROR, its file removed
        carol.post(small + "/parameters", data={"QUERY": "SELECT * FROM mlspec.spectra"})
        doc = finish(carol, small)
        assert doc.find(f"{UWS}phase").text == "ERROR"
        message = doc.find(f"{UWS}errorSummary/{UWS}message").text
        assert "exceeds the storage quota" in message
        assert not (home / "tap-results" / job_id(small) / "result").exists()
        assert not (home / "tap-results" / job_id(small) / "result.part").exists()
        # deleting frees the quota
        carol.delete(big)
        assert not (home / "tap-results" / job_id(big)).exists()
        again = finish(carol, create(carol, QUERY="SELECT TOP 5 * FROM mlspec.spectra"))
        assert again.find(f"{UWS}phase").text == "COMPLETED"
        for ref in listing(carol):
            carol.delete(guarded + "/async/" + ref.get("id"))


def test_service_wide_quotas(database, tmp_path):
    """The global quotas count every owner's jobs (a store over the test database)."""
    store = JobStore(database.engine, TAPLimits(), tmp_path)
    usage = store.usage()
    unfinished = sum(u.unfinished for u in usage)
    stored = sum(u.stored_bytes for u in usage)
    store = JobStore(database.engine, TAPLimits(), tmp_path, UWSSettings(
        total_jobs=unfinished + 1, total_bytes=stored + 1_000))
    with pytest.raises(DALIError, match="the service stores") as refusal:
        store.create(Params([("QUERY", "SELECT 1")], {"t": b"x" * 2_000}),
                     Owner.from_token(None))
    assert refusal.value.status == 403
    assert list(tmp_path.iterdir()) == []  # its staged upload is gone
    job = store.create(Params([("QUERY", "SELECT 1")]), Owner.from_token(None))
    with pytest.raises(DALIError, match="the service holds") as refusal:
        store.create(Params([("QUERY", "SELECT 1")]), Owner.from_token(None))
    assert refusal.value.status == 403
    store.delete(job.job_id)


def test_expiry_removes_job_folders_without_a_job(database, tmp_path):
    """A process that died while creating a job leaves a folder; expiry removes it later."""
    store = JobStore(database.engine, TAPLimits(), tmp_path)
    job = store.create(Params([("QUERY", "SELECT 1")], {"t": b"abc"}), Owner.from_token(None))
    orphan, fresh = tmp_path / "orphanx1", tmp_path / "orphanx2"
    for folder in (orphan / "uploads", fresh / "uploads"):
        folder.mkdir(parents=True)
    hours_ago = time.time() - 2 * 3600
    for folder in (orphan, store.job_dir(job.job_id)):
        os.utime(folder, (hours_ago, hours_ago))
    store.expire()
    assert not orphan.exists()
    assert fresh.exists()  # perhaps a creation in progress
    assert store.uploads(job.job_id) == {"t": b"abc"}
    store.delete(job.job_id)
    assert list(tmp_path.iterdir()) == [fresh]


def _job_tables_bytes(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class AS c "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'latentvo_ops' AND c.relname LIKE 'uws_job%' "
            "AND c.relkind = 'r'")))


def test_uploads_are_files_and_deleting_frees_them(alice, database, tap_env):
    home = Path(tap_env["LATENTVO_HOME"])
    before = _job_tables_bytes(database.engine)
    contents = [os.urandom(2_500_000) for _ in range(3)]
    urls = [create(alice, content) for content in contents]
    for url, content in zip(urls, contents, strict=True):
        [stored] = (home / "tap-results" / job_id(url) / "uploads").iterdir()
        assert stored.stat().st_size == len(content)
        assert alice.get(url + "/parameters/t1").content == content
    assert _job_tables_bytes(database.engine) - before < 1_000_000  # not in the database
    for url in urls:
        assert alice.delete(url).status_code == 303
        assert not (home / "tap-results" / job_id(url)).exists()
    assert _job_tables_bytes(database.engine) - before < 1_000_000


def test_inline_upload_job_runs_from_its_file(alice):
    table = (b'<?xml version="1.0"?><VOTABLE version="1.4" '
             b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
             b'<FIELD name="n" datatype="int"/><DATA><TABLEDATA>'
             b"<TR><TD>7</TD></TR><TR><TD>9</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE>"
             b"</VOTABLE>")
    url = create(alice, table, QUERY="SELECT n FROM TAP_UPLOAD.t1 ORDER BY n")
    doc = finish(alice, url)
    assert doc.find(f"{UWS}phase").text == "COMPLETED", ET.tostring(doc)
    assert doc.find(f"{UWS}jobInfo/rows").text == "2"
    alice.delete(url)


def test_jobs_usage_and_purge_commands(guarded, archive, tap_env):
    env = {**tap_env, **GUARDED_ENV}
    home = Path(tap_env["LATENTVO_HOME"])
    with user(guarded, "dave") as dave:
        url = create(dave, b"y" * 200_000)
    result = run_cli(env, "jobs", "usage")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].split() == ["owner", "unfinished", "jobs", "bytes"]
    assert [line.split() for line in lines if line.startswith("dave ")] == [
        ["dave", "1", "1", "200,000"]]
    assert any(line.startswith("total ") for line in lines)
    assert "quotas: 2 unfinished jobs and 1,500,000 bytes per owner" in result.stderr
    purge = run_cli(env, "jobs", "purge", "--owner", "dave")
    assert purge.returncode == 0 and "deleted 1 jobs of dave" in purge.stderr
    assert httpx.get(url, headers={USER_HEADER: "dave"}).status_code == 404
    assert not (home / "tap-results" / job_id(url)).exists()
    again = run_cli(env, "jobs", "purge", "--owner", "dave")
    assert again.returncode == 1 and again.stderr.startswith("error: no jobs of owner 'dave'")


# -- the migration -----------------------------------------------------------------------


@pytest.fixture
def scratch_engine(database):
    """An owner engine on a new, empty database of the session's embedded server."""
    name = f"scratch_uws_{os.getpid()}"
    with scratch_database(database, name) as port:
        engine = sa.create_engine(database.embedded.url(OWNER_ROLE, port, name))
        yield engine
        engine.dispose()


def _insert_job(conn: sa.Connection, job_id: str, phase: str, **values) -> None:
    columns = {"job_id": job_id, "phase": phase, "execution_duration": 60,
               "destruction": "2099-01-01T00:00:00Z", "parameters": "{}", **values}
    conn.execute(sa.text(
        f"INSERT INTO latentvo_ops.uws_jobs ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)})"), columns)


def _phases(conn: sa.Connection) -> dict[str, str]:
    return dict(conn.execute(sa.text("SELECT job_id, phase FROM latentvo_ops.uws_jobs")).all())


def test_migration_0007_downgrade_and_upgrade(scratch_engine):
    """Down to 0006 (through every later revision) and up again to the head."""
    engine = scratch_engine
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.begin() as conn:
        _insert_job(conn, "filed", "PENDING", owner_key="token:ab", upload_bytes=10)
        _insert_job(conn, "plain", "PENDING", owner_key="token:ab")
    migrate.downgrade(engine, "0006")
    with engine.begin() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("uws_jobs",
                                                                  schema="latentvo_ops")}
        assert "owner_key" not in columns and "upload_bytes" not in columns
        assert sa.inspect(conn).has_table("uws_job_uploads", schema="latentvo_ops")
        # a job whose upload was a file cannot run after the downgrade
        assert _phases(conn) == {"filed": "ERROR", "plain": "PENDING"}
        _insert_job(conn, "in-db", "QUEUED")
        conn.execute(sa.text("INSERT INTO latentvo_ops.uws_job_uploads (job_id, name, content) "
                             "VALUES ('in-db', 't1', 'abc')"))
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert migrate.differences(engine) == []
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("uws_job_uploads", schema="latentvo_ops")
        # a job whose upload was in the database cannot run after the upgrade
        assert _phases(conn) == {"filed": "ERROR", "plain": "PENDING", "in-db": "ERROR"}
