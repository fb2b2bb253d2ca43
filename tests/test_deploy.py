"""deploy/ as shipped: nginx in front of a real server, the systemd units, the PostgreSQL files.

The web server is started with the command line of ``deploy/systemd/latentvo.service``
(its ExecStart, with the variables of ``deploy/systemd/latentvo.env`` and a free port)
and the TAP limits of that env file, on the session's database. nginx runs
``deploy/nginx/latentvo.conf`` with only ports, server name, upstream address and
certificate paths substituted, over TLS with a throwaway certificate, so the checks
see what a client of a production proxy sees: public https URLs in every document
the service returns, streamed results, the body limit.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import requests
import sqlalchemy as sa
from astropy.table import Table

from tests.conftest import REPO, free_port, stop_server
from tests.tap import conftest as tap_fixtures

pyvo = pytest.importorskip("pyvo")
# The TAP tests' archive and catalogue (refilled when another module truncated them).
tap_data = tap_fixtures.tap_data
archive = tap_fixtures.archive
pytestmark = pytest.mark.usefixtures("archive")

DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "systemd" / "latentvo.service"
ENV_FILE = DEPLOY / "systemd" / "latentvo.env"
SITE = DEPLOY / "nginx" / "latentvo.conf"
INSTALLED_CLI = "/opt/latentvo/venv/bin/latentvo"


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        why = f"{name} is not installed (scripts/test.sh installs it as root: apt-get)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return path


def env_file() -> dict[str, str]:
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def unit_command(variables: dict[str, str]) -> list[str]:
    """The unit's ExecStart as argv, ``${VAR}`` expanded as systemd would, run from the repo."""
    line = next(ln for ln in UNIT.read_text().splitlines() if ln.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[0] == INSTALLED_CLI
    expanded = [re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], a) for a in argv[1:]]
    return [sys.executable, "-m", "vo_service.cli", *expanded]


def _wait_for(url: str, proc: subprocess.Popen, what: str, **kw) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{proc.stdout.read()}")
        try:
            if httpx.get(url, timeout=2, **kw).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(proc, kill=True)
    raise RuntimeError(f"{what} did not answer {url} within 90 s")


@pytest.fixture(scope="module")
def workdir():
    # Readable by nginx's worker user (nobody when the tests run as root).
    path = Path(tempfile.mkdtemp(prefix="latentvo-deploy-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def certificate(workdir) -> Path:
    """A self-signed certificate for localhost (SNI needs a name, not an address)."""
    openssl = _tool("openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(workdir / "privkey.pem"), "-out",
                    str(workdir / "fullchain.pem")], check=True, capture_output=True)
    return workdir / "fullchain.pem"


def _session(certificate: Path) -> requests.Session:
    """A requests session trusting the test certificate (and ignoring REQUESTS_CA_BUNDLE)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(certificate)
    return session


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"tls": free_port(), "plain": free_port(), "backend": free_port()}


def start_backend(env: dict[str, str], port: int, base_url: str, workers: int
                  ) -> subprocess.Popen:
    """``latentvo serve`` as the unit runs it (the env file's TAP limits) on ``port``."""
    shipped = env_file()
    variables = {**shipped, "WEB_PORT": str(port), "WEB_WORKERS": str(workers)}
    env = {**env, "LATENTVO_BASE_URL": base_url}
    env.update({k: v for k, v in shipped.items() if k.startswith("LATENTVO_TAP_")})
    proc = subprocess.Popen(unit_command(variables), env=env, cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    _wait_for(f"http://127.0.0.1:{port}/tap/availability", proc, "latentvo serve")
    return proc


@pytest.fixture(scope="module")
def backend(tap_data, database, latentvo_env, ports):
    """``latentvo serve`` with 2 workers, LATENTVO_BASE_URL = the proxy's URL."""
    proc = start_backend(latentvo_env, ports["backend"], f"https://localhost:{ports['tls']}", 2)
    yield f"http://127.0.0.1:{ports['backend']}"
    stop_server(proc)


def start_nginx(workdir: Path, certificate: Path, ports: dict[str, int],
                location: str = "/") -> tuple[subprocess.Popen, str]:
    """nginx with the shipped site (``location`` instead of ``/`` for a sub-path).

    Returns the process and the public https URL (with the sub-path) once it answers.
    """
    nginx = _tool("nginx")
    site = SITE.read_text()
    for old, new in (("listen 443 ssl", f"listen 127.0.0.1:{ports['tls']} ssl"),
                     ("listen 80", f"listen 127.0.0.1:{ports['plain']}"),
                     ("latentvo.example.org", "localhost"),
                     ("server 127.0.0.1:8000;", f"server 127.0.0.1:{ports['backend']};"),
                     ("/etc/ssl/latentvo/", f"{certificate.parent}/"),
                     ("    location / {", f"    location {location} {{")):
        assert old in site, f"{SITE} no longer contains {old!r}: update this test"
        site = site.replace(old, new)
    (workdir / "latentvo.conf").write_text(site)
    temp = "\n".join(f"  {kind}_temp_path {workdir}/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (workdir / "nginx.conf").write_text(f"""
worker_processes 1;
pid {workdir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log {workdir}/access.log;
{temp}
  include {workdir}/latentvo.conf;
}}
""")
    args = [nginx, "-p", str(workdir), "-e", str(workdir / "error.log"),
            "-c", str(workdir / "nginx.conf")]
    test = subprocess.run([*args, "-t"], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen([*args, "-g", "daemon off;"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"https://localhost:{ports['tls']}{location.rstrip('/')}"
    try:
        _wait_for(url + "/tap/availability", proc, "nginx",
                  verify=ssl.create_default_context(cafile=str(certificate)))
    except BaseException:
        stop_server(proc)
        raise
    return proc, url


@pytest.fixture(scope="module")
def proxy(backend, workdir, certificate, ports) -> str:
    """nginx with the shipped site; yields its public https URL."""
    proc, url = start_nginx(workdir, certificate, ports)
    yield url
    stop_server(proc)


@pytest.fixture
def client(proxy, certificate):
    context = ssl.create_default_context(cafile=str(certificate))
    with httpx.Client(base_url=proxy, verify=context, timeout=60) as c:
        yield c


@pytest.fixture
def tap(proxy, certificate):
    return pyvo.dal.TAPService(proxy + "/tap", session=_session(certificate))


def test_landing_page_names_the_public_url(client, proxy):
    page = client.get("/")
    assert page.status_code == 200
    assert f"{proxy}/tap" in page.text and f"{proxy}/ssa" in page.text


def test_capabilities_point_at_the_proxy(client, proxy, backend):
    caps = client.get("/tap/capabilities")
    assert caps.status_code == 200
    urls = re.findall(r"<accessURL[^>]*>([^<]+)</accessURL>", caps.text)
    # TAP's own endpoints, and the publishing registry that holds its record
    assert proxy + "/oai" in urls, urls
    assert all(u.startswith(proxy + "/tap") for u in urls if u != proxy + "/oai"), urls
    assert backend.split("//")[1] not in caps.text


def test_sync_query_through_pyvo(tap):
    table = tap.run_sync("SELECT TOP 5 spectrum_id, s_ra FROM latentvo.spectra "
                         "ORDER BY spectrum_id").to_table()
    assert list(table["spectrum_id"]) == [1, 2, 3, 4, 5]


def test_async_job_urls_are_public(tap, client, proxy):
    job = tap.submit_job("SELECT spec_id, snr FROM mlspec.spectra WHERE snr > 100")
    assert job.url.startswith(proxy + "/tap/async/"), job.url
    job.run()
    job.wait(timeout=60)  # the polls may reach either web process: jobs live in PostgreSQL
    assert job.phase == "COMPLETED"
    assert job.result_uri.startswith(proxy + "/tap/async/"), job.result_uri
    assert len(job.fetch_result().to_table()) > 0
    created = client.post("/tap/async", data={"LANG": "ADQL", "QUERY": "SELECT 1 AS x FROM "
                                              "latentvo.spectra"})
    assert created.status_code == 303
    assert created.headers["location"].startswith(proxy + "/tap/async/")
    job.delete()


def test_ssa_urls_come_from_base_url(certificate, proxy):
    from astropy.coordinates import SkyCoord

    ssa = pyvo.dal.SSAService(proxy + "/ssa", session=_session(certificate))
    results = ssa.search(pos=SkyCoord(180.0, 0.0, unit="deg"), diameter=10.0)
    assert len(results) > 0
    assert all(str(r.acref).startswith(proxy + "/getdata?") for r in results)


def test_plain_http_redirects_keeping_the_method(ports):
    response = httpx.post(f"http://127.0.0.1:{ports['plain']}/tap/sync",
                          headers={"Host": "localhost"}, data={"QUERY": "x"})
    assert response.status_code == 308
    assert response.headers["location"] == "https://localhost/tap/sync"


def test_unknown_host_names_get_no_answer(client):
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/tap/capabilities", headers={"Host": "attacker.example"})


def test_large_result_streams(client):
    """200,000 rows (about 20 MB of VOTable): chunked, gzipped, complete."""
    query = ("SELECT TOP 200000 a.spec_id, a.ra, a.dec, a.snr, b.spec_id AS other "
             "FROM mlspec.spectra AS a CROSS JOIN mlspec.spectra AS b")
    params = {"LANG": "ADQL", "QUERY": query, "MAXREC": "200000", "RESPONSEFORMAT": "csv"}
    for encoding in ("identity", "gzip"):
        with client.stream("POST", "/tap/sync", data=params,
                           headers={"Accept-Encoding": encoding}) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers  # streamed, not spooled
            assert response.headers.get("transfer-encoding") == "chunked"
            assert response.headers.get("content-encoding", "identity") == encoding, \
                response.headers
            lines = sum(chunk.count("\n") for chunk in response.iter_text())
        assert lines == 200_001  # header line + rows


def test_upload_within_the_limit_passes(tap):
    targets = Table({"target": ["STAR 0", "STAR 3"]})
    got = tap.run_sync("SELECT u.target, s.spectrum_id FROM TAP_UPLOAD.t AS u "
                       "JOIN latentvo.spectra AS s ON s.target_name = u.target",
                       uploads={"t": targets}).to_table()
    assert sorted(set(got["target"])) == ["STAR 0", "STAR 3"]


def test_upload_just_over_the_service_limit_gets_its_votable(client):
    """nginx's limit sits above LATENTVO_TAP_UPLOAD_BYTES: the service explains the refusal."""
    limit = int(env_file()["LATENTVO_TAP_UPLOAD_BYTES"])
    body = b"x" * (limit + 100_000)  # refused on its size, before it is parsed
    assert len(body) < 64 * 2**20 - 100_000  # nginx's client_max_body_size 64m
    response = client.post("/tap/sync", data={
        "LANG": "ADQL", "QUERY": "SELECT COUNT(*) FROM TAP_UPLOAD.big", "UPLOAD": "big,param:big"},
        files={"big": ("big.vot", body)}, timeout=120)
    assert response.status_code == 413
    assert "QUERY_STATUS" in response.text and "limit" in response.text


def test_upload_far_over_the_limit_is_refused_by_nginx(proxy, certificate):
    """Refused from the headers alone: nothing of the body reaches the service."""
    port = int(proxy.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(certificate))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"POST /tap/sync HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: multipart/form-data; boundary=x\r\n"
                    b"Content-Length: 80000000\r\nExpect: 100-continue\r\n\r\n")
        status = tls.recv(4096).split(b"\r\n", 1)[0]
    assert status == b"HTTP/1.1 413 Request Entity Too Large"


# -- systemd ------------------------------------------------------------------------


def test_systemd_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    venv = str(Path(sys.executable).parent.parent)
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text()
        assert INSTALLED_CLI in text
        (tmp_path / unit.name).write_text(text.replace("/opt/latentvo/venv", venv))
        units.append(str(tmp_path / unit.name))
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True)
    ours = [ln for ln in (result.stdout + result.stderr).splitlines() if "latentvo" in ln]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


def test_units_run_existing_commands(latentvo_env):
    """Every ``latentvo ...`` a unit runs parses (``--help`` after its arguments)."""
    from tests.conftest import run_cli

    variables = env_file()
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                argv = shlex.split(line.removeprefix("ExecStart="))[1:]
                argv = [re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], a) for a in argv]
                result = run_cli(latentvo_env, *argv, "--help")
                assert result.returncode == 0, (unit.name, result.stderr)


# -- PostgreSQL ---------------------------------------------------------------------


def _conf_settings(path: Path) -> dict[str, str]:
    settings = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not 'name = value': {line!r}"
            settings[name.strip()] = value.strip().strip("'")
    return settings


@pytest.mark.parametrize("name", ["latentvo.conf", "replica.conf"])
def test_postgresql_settings_are_real(database, name):
    """Every name is a GUC of the server; enum and boolean values are ones it accepts."""
    settings = _conf_settings(DEPLOY / "postgresql" / name)
    # Superuser-only settings (shared_preload_libraries) are hidden from the owner.
    engine = database.engine
    if database.embedded is not None:
        engine = sa.create_engine(database.embedded.superuser_url(database.embedded.status().port))
    with engine.connect() as conn:
        known = {row.name: row for row in conn.execute(sa.text(
            "SELECT name, vartype, enumvals FROM pg_settings"))}
        extensions = set(conn.scalars(sa.text("SELECT name FROM pg_available_extensions")))
    if engine is not database.engine:
        engine.dispose()
    # pg_stat_statements.* exist only once the library is loaded (the embedded server has it).
    unknown = sorted(set(settings) - set(known))
    assert not unknown, f"not PostgreSQL settings: {unknown}"
    for key, value in settings.items():
        row = known[key]
        if row.vartype == "bool":
            assert value in ("on", "off", "true", "false"), (key, value)
        if row.vartype == "enum":
            assert value in row.enumvals, (key, value, row.enumvals)
    for library in settings.get("shared_preload_libraries", "").split(","):
        if library.strip():
            assert library.strip() in extensions


def test_setup_sql_creates_what_the_migrations_need():
    """setup.sql creates the extensions the code creates (pgvector in migration 0001)."""
    from vo_service.db.database import EXTENSIONS

    sql = (DEPLOY / "postgresql" / "setup.sql").read_text()
    migration = (REPO / "schema" / "migrations" / "versions" / "0001_initial_schema.py").read_text()
    for ext in set(EXTENSIONS) | set(re.findall(r"CREATE EXTENSION IF NOT EXISTS (\w+)",
                                                migration)):
        assert f"CREATE EXTENSION IF NOT EXISTS {ext};" in sql
