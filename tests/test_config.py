"""Settings: defaults, the TOML file, the environment over it, and what is refused."""

import os
from pathlib import Path

import pytest

from vo_service.config import (
    ConfigError,
    IngestSettings,
    SSALimits,
    TAPLimits,
    UWSSettings,
    WebSettings,
    load_settings,
)
from vo_service.errors import OperatorError


def test_defaults(tmp_path):
    s = load_settings({"LATENTVO_HOME": str(tmp_path)})
    assert s.home == tmp_path.resolve()
    assert s.embedded and s.database_url is None
    assert s.reader_role == "latentvo_reader"
    assert s.store_dir == tmp_path.resolve() / "store"


def test_file_then_environment(tmp_path):
    (tmp_path / "latentvo.toml").write_text('release = "dr2"\nembedded_port = 6000\n')
    s = load_settings({"LATENTVO_HOME": str(tmp_path)})
    assert (s.release, s.embedded_port) == ("dr2", 6000)
    s = load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_RELEASE": "dr3"})
    assert s.release == "dr3"


@pytest.mark.parametrize("content, message", [
    ("release = ", "not valid TOML"),
    ('colour = "blue"', "unknown setting"),
    ('embedded_port = "many"', "embedded_port must be an integer"),
    ('authority = "http://x"', "must start with ivo://"),
])
def test_bad_config_file(tmp_path, content, message):
    (tmp_path / "latentvo.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings({"LATENTVO_HOME": str(tmp_path)})


def test_bad_environment(tmp_path):
    with pytest.raises(ConfigError, match="postgresql"):
        load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_DATABASE_URL": "mysql://x"})
    with pytest.raises(ConfigError, match="not a file"):
        load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_CONFIG": str(tmp_path / "no")})


def test_sections_default_to_their_dataclasses(tmp_path):
    s = load_settings({"LATENTVO_HOME": str(tmp_path)})
    assert (s.tap, s.ssa, s.ingest) == (TAPLimits(), SSALimits(), IngestSettings())
    assert s.tap.maxrec_default == 20_000 and s.ssa.maxrec_hard == 100_000


def test_sections_from_file_then_environment(tmp_path):
    (tmp_path / "latentvo.toml").write_text(
        'release = "dr2"\n'
        "[tap]\nsync_timeout = 12\nmaxrec_default = 500\nworkers = 0\n"
        "[ssa]\nmaxrec_hard = 5000\ntimeout = 7\nmax_size = 2.5\n"
        "[ingest]\nworkers = 3\n")
    s = load_settings({"LATENTVO_HOME": str(tmp_path)})
    assert (s.tap.sync_timeout, s.tap.maxrec_default, s.tap.workers) == (12, 500, 0)
    assert (s.ssa.maxrec_hard, s.ssa.timeout, s.ssa.max_size) == (5000, 7, 2.5)
    assert s.ingest.reader_processes == 3
    assert s.tap.upload_bytes == TAPLimits().upload_bytes  # keys not given keep defaults
    s = load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_TAP_SYNC_TIMEOUT": "4",
                       "LATENTVO_SSA_TIMEOUT": "9", "LATENTVO_TAP_UPLOAD_BYTES": " "})
    assert (s.tap.sync_timeout, s.tap.maxrec_default, s.ssa.timeout) == (4, 500, 9)
    assert s.tap.upload_bytes == TAPLimits().upload_bytes  # blank variables are unset


@pytest.mark.parametrize("content, message", [
    ("[tap]\nsync_timeout = \"soon\"", r"\[tap\] sync_timeout must be an integer"),
    ("[tap]\nsync_timeout = 0", r"\[tap\] sync_timeout must be at least 1, got 0"),
    ("[tap]\nworkers = -1", r"\[tap\] workers must be at least 0"),
    ("[tap]\nupload_rows = true", r"\[tap\] upload_rows must be an integer"),
    ("[tap]\nmaxrec_hard = 10", r"\[tap\] maxrec_hard \(10\) must be at least maxrec_default"),
    ("[tap]\nretention_default = 2000000",
     r"\[tap\] retention_hard \(1209600\) must be at least retention_default"),
    ("[tap]\nsync_timeot = 3", r"unknown setting\(s\) in \[tap\]: sync_timeot"),
    ("tap = 3", r"tap must be a table"),
    ("[ssa]\nmax_size = 400", r"\[ssa\] max_size must be at least 0.001 and at most 360"),
    ("[ssa]\nmaxrec_default = 200000", r"\[ssa\] maxrec_hard \(100000\) must be at least"),
    ("[ingest]\nchunk_size = 0", r"\[ingest\] chunk_size must be at least 1"),
    ("[http]\nport = 1", r"unknown setting\(s\) http"),
    ("[tap]\nupload_columns = 2000", r"\[tap\] upload_columns must be at least 1 and at most 1600"),
    ("[tap]\nupload_fetch_allow = [1]", r"upload_fetch_allow must be a list of strings"),
    ("[tap]\nupload_fetch_allow = 'intranet host'", r"'intranet host' is neither a network"),
    ("[requests]\nbody_bytes = 0", r"\[requests\] body_bytes must be at least 1"),
])
def test_bad_section_in_file(tmp_path, content, message):
    (tmp_path / "latentvo.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings({"LATENTVO_HOME": str(tmp_path)})


@pytest.mark.parametrize("env, message", [
    ({"LATENTVO_TAP_MAXREC_HARD": "lots"},
     r"LATENTVO_TAP_MAXREC_HARD: \[tap\] maxrec_hard must be an integer, got 'lots'"),
    ({"LATENTVO_TAP_WAIT_CAP": "-5"},
     r"LATENTVO_TAP_WAIT_CAP: \[tap\] wait_cap must be at least 0"),
    ({"LATENTVO_TAP_MAXREC_DEFAULT": "20000000"}, r"\[tap\] maxrec_hard .* maxrec_default"),
    ({"LATENTVO_SSA_MAX_SIZE": "wide"}, r"\[ssa\] max_size must be a number"),
    ({"LATENTVO_INGEST_WORKERS": "2.5"}, r"\[ingest\] workers must be an integer"),
])
def test_bad_section_in_environment(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"LATENTVO_HOME": str(tmp_path), **env})


def test_upload_fetch_allow_list_and_request_limits(tmp_path):
    (tmp_path / "latentvo.toml").write_text(
        '[tap]\nupload_fetch_allow = ["10.0.0.0/8", "files.example.org"]\n'
        "[requests]\nbody_bytes = 5000\nparameters = 20\n")
    s = load_settings({"LATENTVO_HOME": str(tmp_path)})
    assert s.tap.upload_fetch_allow == ("10.0.0.0/8", "files.example.org")
    assert (s.requests.body_bytes, s.requests.parameters) == (5000, 20)
    s = load_settings({"LATENTVO_HOME": str(tmp_path),
                       "LATENTVO_TAP_UPLOAD_FETCH_ALLOW": "127.0.0.1/32, ::1,localhost"})
    assert s.tap.upload_fetch_allow == ("127.0.0.1/32", "::1", "localhost")
    assert load_settings({"LATENTVO_HOME": str(tmp_path / "none")}).tap.upload_fetch_allow == ()


def test_datalink_k_settings_and_their_ranges(tmp_path):
    s = load_settings({"LATENTVO_HOME": str(tmp_path)})
    assert (s.datalink.similar_k_default, s.datalink.similar_k_max) == (10, 1000)
    s = load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_DATALINK_SIMILAR_K_MAX": "50",
                       "LATENTVO_DATALINK_SIMILAR_K_DEFAULT": "50"})
    assert (s.datalink.similar_k_default, s.datalink.similar_k_max) == (50, 50)
    for env, message in (({"LATENTVO_DATALINK_SIMILAR_K_MAX": "5"},
                          r"\[datalink\] similar_k_max \(5\) must be at least similar_k_default"),
                         ({"LATENTVO_DATALINK_SIMILAR_K_MAX": "100001"}, r"at most 100000"),
                         ({"LATENTVO_DATALINK_SIMILAR_K_DEFAULT": "0"}, r"at least 1")):
        with pytest.raises(ConfigError, match=message):
            load_settings({"LATENTVO_HOME": str(tmp_path), **env})


def test_configuration_errors_are_operator_errors():
    assert issubclass(ConfigError, OperatorError)


def test_uws_section(tmp_path):
    """[uws]: a text setting (the owner header) next to the quotas."""
    assert load_settings({"LATENTVO_HOME": str(tmp_path)}).uws == UWSSettings()
    (tmp_path / "latentvo.toml").write_text(
        '[uws]\nowner_header = "X-Remote-User"\nowner_jobs = 5\n')
    s = load_settings({"LATENTVO_HOME": str(tmp_path)})
    assert (s.uws.owner_header, s.uws.owner_jobs) == ("X-Remote-User", 5)
    s = load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_UWS_OWNER_HEADER": "X-User",
                       "LATENTVO_UWS_TOTAL_BYTES": "5000"})
    assert (s.uws.owner_header, s.uws.total_bytes) == ("X-User", 5000)
    with pytest.raises(ConfigError, match=r"\[uws\] owner_jobs must be at least 1, got 0"):
        load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_UWS_OWNER_JOBS": "0"})
    (tmp_path / "latentvo.toml").write_text("[uws]\nowner_header = 3\n")
    with pytest.raises(ConfigError, match=r"\[uws\] owner_header must be a string"):
        load_settings({"LATENTVO_HOME": str(tmp_path)})


def test_default_home_is_reachable_by_the_database_system_user():
    """Root's own home is private; the embedded server (run as a system user) must reach
    the data directory, so root's default home is /var/lib/latentvo."""
    home = load_settings({}).home
    if os.geteuid() == 0:
        assert home == Path("/var/lib/latentvo")
    else:
        assert home == Path("~/.latentvo").expanduser().resolve()


def test_web_section(tmp_path):
    """``[web]``: query slots, per-client and queue limits, workers, trusted proxies."""
    s = load_settings({"LATENTVO_HOME": str(tmp_path)})
    assert s.web == WebSettings() and s.web.trusted_proxies is None
    assert (s.web.workers, s.web.query_slots, s.web.client_queries) == (1, 8, 4)
    (tmp_path / "latentvo.toml").write_text(
        '[web]\nquery_slots = 3\nclient_queries = 2\nqueue_waiters = 0\n'
        'trusted_proxies = "10.0.0.1,10.0.0.2"\n')
    s = load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_WEB_WORKERS": "4",
                       "LATENTVO_WEB_RETRY_AFTER": "30"})
    assert (s.web.query_slots, s.web.client_queries, s.web.queue_waiters) == (3, 2, 0)
    assert (s.web.workers, s.web.retry_after) == (4, 30)
    assert s.web.trusted_proxies == "10.0.0.1,10.0.0.2"
    with pytest.raises(ConfigError, match=r"\[web\] query_slots must be at least 1"):
        load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_WEB_QUERY_SLOTS": "0"})
    (tmp_path / "latentvo.toml").write_text("[web]\nclient_queries = -1\n")
    with pytest.raises(ConfigError, match="client_queries must be at least 1"):
        load_settings({"LATENTVO_HOME": str(tmp_path)})


def test_query_size_limits(tmp_path):
    s = load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_TAP_QUERY_LENGTH": "5000",
                       "LATENTVO_TAP_QUERY_NODES": "300"})
    assert (s.tap.query_length, s.tap.query_nodes) == (5000, 300)
    assert (TAPLimits().query_length, TAPLimits().query_nodes) == (100_000, 20_000)
    with pytest.raises(ConfigError, match="query_nodes must be at least 1"):
        load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_TAP_QUERY_NODES": "0"})
