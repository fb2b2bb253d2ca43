from pathlib import Path

import pytest

from vo_service.config import ConfigError, load_settings


def test_defaults(tmp_path):
    s = load_settings({"LATENTVO_HOME": str(tmp_path)})
    assert s.home == tmp_path.resolve()
    assert s.embedded and s.database_url is None
    assert s.reader_role == "latentvo_reader"
    assert s.store_dir == tmp_path.resolve() / "store"


def test_home_defaults_to_dot_latentvo():
    assert load_settings({}).home == (Path.home() / ".latentvo").resolve()


def test_file_then_environment(tmp_path):
    (tmp_path / "latentvo.toml").write_text('release = "dr2"\nembedded_port = 6000\n')
    s = load_settings({"LATENTVO_HOME": str(tmp_path)})
    assert (s.release, s.embedded_port) == ("dr2", 6000)
    s = load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_RELEASE": "dr3"})
    assert s.release == "dr3"


@pytest.mark.parametrize("content, message", [
    ("release = ", "not valid TOML"),
    ('colour = "blue"', "unknown setting"),
    ('embedded_port = "many"', "embedded_port must be int"),
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
