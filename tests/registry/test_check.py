"""``latentvo registry check`` and ``show`` as an operator runs them, and the checks
behind them: the form of the ``[service]`` metadata and the UAT subjects."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from tests.conftest import run_cli
from tests.registry.conftest import BASE
from vo_service.config import ConfigError, ServiceSettings, load_settings


def _env(latentvo_env, tmp_path, toml: str) -> dict[str, str]:
    config = tmp_path / "latentvo.toml"
    config.write_text(toml)
    return {**latentvo_env, "LATENTVO_CONFIG": str(config)}


def test_good_configuration_passes_with_every_record_validated(site, latentvo_env, tmp_path,
                                                               shared):
    schemas = shared("ivoa-xsd", "the IVOA XML schemas")
    env = _env(latentvo_env, tmp_path, f'base_url = "{BASE}"\n[registry]\n'
                                       f'schema_dir = "{schemas}"\n')
    result = run_cli(env, "registry", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["8 records checked: no problems found"]
    assert "XSD validation skipped" not in result.stderr
    assert "subjects not checked against the UAT" in result.stderr


def test_without_schema_dir_the_check_says_xsd_validation_was_skipped(site, latentvo_env,
                                                                     tmp_path):
    env = _env(latentvo_env, tmp_path, "")
    result = run_cli(env, "registry", "check", "--base-url", BASE)
    assert result.returncode == 0, result.stdout + result.stderr
    skipped = [line for line in result.stderr.splitlines() if "XSD validation skipped" in line]
    assert len(skipped) == 1 and "schema_dir" in skipped[0]


def test_bad_metadata_gives_one_line_per_problem(latentvo_env, tmp_path):
    env = _env(latentvo_env, tmp_path, 'authority = "latentvo.example"\n[service]\n'
               'short_name = "a name far too long"\ncontact_email = "nobody"\n')
    result = run_cli(env, "registry", "check", "--base-url", BASE)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    assert lines[0].startswith("authority must start with ivo://")
    assert lines[1].startswith("[service] short_name must have 1 to 16 characters, got 19")
    assert lines[2].startswith("[service] contact_email is not an e-mail address")


def test_base_url_is_required(site, latentvo_env, tmp_path):
    result = run_cli(_env(latentvo_env, tmp_path, ""), "registry", "check")
    assert result.returncode == 1
    assert "set base_url in latentvo.toml (LATENTVO_BASE_URL) or pass --base-url" in (
        result.stdout + result.stderr)


def test_show_prints_one_record(site, latentvo_env, tmp_path):
    env = _env(latentvo_env, tmp_path, f'base_url = "{BASE}"\n')
    result = run_cli(env, "registry", "show", "ivo://latentvo.example/ssa")
    assert result.returncode == 0, result.stderr
    assert ET.fromstring(result.stdout).findtext("identifier") == "ivo://latentvo.example/ssa"
    missing = run_cli(env, "registry", "show", "ivo://latentvo.example/nothing")
    assert missing.returncode == 1
    assert "no record has the identifier" in missing.stderr


def test_subjects_are_checked_against_a_uat_file(site, tmp_path):
    from vo_service.registry.validate import check

    vocabulary = tmp_path / "uat.json"
    vocabulary.write_text(json.dumps({"uri": "http://www.ivoa.net/rdf/uat", "terms": {
        "stellar-spectroscopy": {"label": "Stellar spectroscopy"},
        "stellar-atmospheres": {"label": "Stellar atmospheres"}}}))
    service = replace(site.settings.service, subjects=(
        "stellar-spectroscopy", "Stellar Atmospheres", "http://www.ivoa.net/rdf/uat#"
        "stellar-spectroscopy", "machine-dreams"))
    settings = replace(site.settings, service=service,
                       registry=replace(site.settings.registry, uat_file=vocabulary))
    report = check(settings, [])
    assert report.problems == ["[service] subjects: 'machine-dreams' is not a concept of the "
                               "UAT vocabulary in [registry] uat_file"]
    assert not any("UAT" in line for line in report.skipped)
    vocabulary.write_text("[]")
    assert check(settings, []).problems[0].startswith("[registry] uat_file: ")


def test_service_settings_from_the_file_and_environment(tmp_path):
    config = tmp_path / "latentvo.toml"
    config.write_text('[service]\ntitle = "My archive"\ncreators = ["A. One", "B. Two"]\n'
                      'description = """two\nlines"""\nsupplement_dois = ["10.1234/x.y"]\n'
                      '[registry]\nschema_dir = "/tmp/xsd"\npage_size = 7\n')
    settings = load_settings({"LATENTVO_HOME": str(tmp_path), "LATENTVO_CONFIG": str(config),
                              "LATENTVO_SERVICE_SUBJECTS": "stellar-spectroscopy, Galaxies"})
    service = settings.service
    assert (service.title, service.creators) == ("My archive", ("A. One", "B. Two"))
    assert service.description == "two lines"
    assert service.subjects == ("stellar-spectroscopy", "Galaxies")
    assert service.supplement_dois == ("10.1234/x.y",)
    assert str(settings.registry.schema_dir) == "/tmp/xsd"
    assert settings.registry.page_size == 7
    assert settings.registry.uat_file is None


@pytest.mark.parametrize(("values", "problem"), [
    ({"short_name": ""}, "short_name must have 1 to 16 characters"),
    ({"license": "CC BY 4.0"}, "license must be an SPDX identifier"),
    ({"license_url": "creativecommons.org"}, "license_url must be an absolute http(s) URL"),
    ({"reference_url": "ftp://x.org/"}, "reference_url must be an absolute http(s) URL"),
    ({"publisher_id": "http://x.org"}, "publisher_id must be an ivo:// identifier"),
    ({"subjects": ()}, "subjects must name at least one UAT concept"),
    ({"subjects": ("stellar;spectra",)}, "is neither a UAT concept identifier"),
    ({"supplement_dois": ("doi.org/10.1/x",)}, "is not a DOI"),
    ({"creators": ()}, "creators must name at least one creator"),
])
def test_each_metadata_rule(values, problem):
    problems = replace(ServiceSettings(), **values).problems()
    assert len(problems) == 1 and problem in problems[0], problems
    assert ServiceSettings().problems() == []


def test_bad_metadata_stops_the_settings_from_loading(tmp_path):
    with pytest.raises(ConfigError, match="short_name must have 1 to 16 characters"):
        load_settings({"LATENTVO_HOME": str(tmp_path),
                       "LATENTVO_SERVICE_SHORT_NAME": "seventeen chars!!"})
