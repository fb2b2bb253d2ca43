"""``pip install .`` gives a service that runs on its own, away from the source checkout.

The wheel is built from a copy of the files the build reads, installed without its
dependencies into a throw-away virtual environment, and ``latentvo serve`` is started from
that environment's ``bin/`` in a folder outside the repository, with no PYTHONPATH, on the
session's database. Pages that read packaged files must then answer: the TAP examples and
the service metadata (``resources/``, shipped as ``vo_service.resources``), an ADQL query
(the grammar), and the start itself (the migrations).

Two shortcuts keep this to seconds. The wheel is built without build isolation, with the
setuptools of the test environment (torch requires setuptools>=77, what pyproject.toml
asks for), so nothing is downloaded. The throw-away environment borrows the test
environment's third-party packages through a ``.pth`` file instead of installing them
again (torch alone is a few hundred MB); the lines of a ``.pth`` file only extend
``sys.path``, so the editable install of this checkout that the test environment may hold
(a finder hooked in by its own ``.pth`` file) stays inactive there, which the test checks.
"""

from __future__ import annotations

import csv
import html
import io
import json
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, start_server, stop_server
from vo_service.config import ServiceSettings

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
PACKAGE_DIRS: dict[str, str] = PYPROJECT.get("package-dir", {})
EXAMPLES = REPO / "resources" / "examples" / "tap_examples.xhtml"


def _source_files() -> dict[str, Path]:
    """Every file of the packages in the source tree, by its path inside the wheel."""
    roots = {name.split(".")[0]: REPO / name.split(".")[0] for name in PYPROJECT["packages"]}
    roots.update({name.replace(".", "/"): REPO / folder for name, folder in PACKAGE_DIRS.items()})
    return {f"{prefix}/{path.relative_to(root).as_posix()}": path
            for prefix, root in roots.items() for path in root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
            and not path.name.startswith(".")}


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy so that the build leaves nothing in the checkout."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    folders = {name.split(".")[0] for name in PYPROJECT["packages"]} | set(PACKAGE_DIRS.values())
    for folder in folders:
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", str(dist), str(source)])
    (built,) = dist.glob("latentvo-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment holding the wheel; returns its ``bin/`` folder."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # The wheel goes in before the borrowed packages are visible, so pip sees an empty
    # environment and leaves the test environment's packages alone.
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
          "--no-deps", "--no-index", str(wheel)])
    probe = ("import json, sys, sysconfig; "
             "print(json.dumps([sysconfig.get_path('purelib'), sys.path]))")
    purelib, bare = json.loads(_run([str(python), "-c", probe], cwd=env_dir).stdout)
    # What this interpreter can import and a bare environment cannot, minus the checkout
    # itself (a virtual environment inside the checkout, as scripts/setup.sh makes, stays).
    borrowed = [path for path in sys.path if path and path not in bare and Path(path).is_dir()
                and Path(path).resolve() != REPO.resolve()]
    (Path(purelib) / "latentvo_test_borrowed.pth").write_text(
        "".join(f"{path}\n" for path in borrowed))
    return env_dir / "bin"


@pytest.fixture(scope="module")
def outside_env(latentvo_env) -> dict[str, str]:
    """The test database's environment with nothing pointing at the checkout."""
    return {k: v for k, v in latentvo_env.items() if k != "PYTHONPATH"}


def test_wheel_holds_every_module_and_data_file(wheel):
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(set(_source_files()) - in_wheel)
    assert not missing, ("not in the wheel (list the package in pyproject.toml's "
                         f"[tool.setuptools] packages, or its files in package-data): {missing}")
    assert "vo_service/resources/examples/tap_examples.xhtml" in in_wheel


def test_installed_code_comes_from_the_environment(installed, outside_env, tmp_path):
    probe = ("import schema.migrate, vo_service, vo_service.resources\n"
             "for m in (vo_service, vo_service.resources, schema.migrate):\n"
             "    print(m.__file__)\n")
    files = _run([str(installed / "python"), "-c", probe], cwd=tmp_path, env=outside_env)
    env_dir = installed.parent.resolve()
    for line in files.stdout.split():
        assert Path(line).resolve().is_relative_to(env_dir), line


def test_installed_service_serves_packaged_files(installed, outside_env, database, tmp_path):
    title = ServiceSettings().title
    proc, url = start_server(outside_env, command=(str(installed / "latentvo"),), cwd=tmp_path)
    try:
        examples = httpx.get(url + "/tap/examples", timeout=30)
        assert examples.status_code == 200
        assert examples.headers["content-type"].startswith("application/xhtml+xml")
        assert examples.content == EXAMPLES.read_bytes()
        script = httpx.get(url + "/explore/static/explore.js", timeout=30)  # explorer
        assert script.content == (REPO / "vo_service/explore/static/explore.js").read_bytes()
        for page in ("/", "/tap"):
            response = httpx.get(url + page, timeout=30)
            assert response.status_code == 200, page
            assert html.escape(title) in response.text, page
        query = httpx.post(url + "/tap/sync", timeout=60, data={
            "LANG": "ADQL", "RESPONSEFORMAT": "csv",
            "QUERY": "SELECT TOP 1 table_name FROM tap_schema.tables WHERE schema_name = 'ivoa'"})
        assert query.status_code == 200, query.text
        assert list(csv.reader(io.StringIO(query.text))) == [["table_name"], ["ivoa.obscore"]]
    finally:
        stop_server(proc)
