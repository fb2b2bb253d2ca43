"""Model cards against a real server: small trained models of each kind, an older registry
row, DataLink, TAP and the migration's view."""

from __future__ import annotations

import csv
import io
import json
from importlib import util
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from astropy.io.votable import parse_single_table

from ml.analysis import analyse
from ml.infer import infer
from ml.train import AutoencoderConfig, LabelConfig
from ml.training_runs import train_autoencoder_run, train_label_run
from schema.model_cards import model_cards, view_sql
from tests.conftest import start_server, stop_server
from tests.ml.conftest import LABEL_SET, ml_archive  # noqa: F401  (the fixture)
from vo_service.model_cards.card import CARD_FORMAT, card_problems

AE = AutoencoderConfig(latent_dim=8, epochs=3, channels=(8, 16, 32), hidden=64, profile="cpu")
LABELS = LabelConfig(epochs=4, members=1, channels=(8, 16, 32), hidden=64)
OLD = "old<model>&"
OLD_SELECTION = "hand-picked <b>bright</b> stars & \"friends\""
BY_SNR = [{"snr_min": 20.0, "snr_max": 40.0, "n": 30, "flagged_fraction": 0.1,
           "labels": {"teff": {"rmse": 80.0, "z_std": 1.3, "coverage_68": 0.6,
                               "coverage_95": 0.9}}},
          {"snr_min": 40.0, "snr_max": 200.0, "n": 40, "flagged_fraction": 0.02,
           "labels": {"teff": {"rmse": 30.0, "z_std": 1.0, "coverage_68": 0.69,
                               "coverage_95": 0.95, "crb_ratio": 1.43}}}]
MIGRATION = (Path(__file__).parents[1] / "schema" / "migrations" / "versions"
             / "0011_model_cards_view.py")


@pytest.fixture(scope="module")
def trained(database, settings, ml_archive):  # noqa: F811  (ml_archive is the fixture)
    """An analysed autoencoder and a label model with their products, and an older label
    model's row written by hand: recorded before per-S/N metrics, bookkeeping, profile and
    label set existed, with markup in its text; then a second label model's per-S/N metrics
    as the calibration job records them."""
    train_autoencoder_run(database.engine, settings, model_id="card-ae", config=AE,
                          n_pixels=256, seed=3, progress=False)
    train_label_run(database.engine, settings, label_set=LABEL_SET, autoencoder_id="card-ae",
                    model_id="card-labels", config=LABELS, seed=3, progress=False)
    infer(database.engine, settings, "card-labels")
    analyse(database.engine, settings, "card-ae", label_set=LABEL_SET, sample=300)
    with database.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO latentvo.models (model_id, kind, architecture, hyperparameters, "
            "wavelength_grid, training_selection, training_checksum, code_version, "
            "random_seed, metrics, artifact_path, artifact_sha256, created_at) VALUES "
            "(:id, 'label-regressor', '{}', '{}', '{}', :sel, :sum, '0.1', 1, :metrics, "
            "'models/old/model.pt', :sum, '2020-01-01T00:00:00Z')"),
            {"id": OLD, "sel": OLD_SELECTION, "sum": "0" * 64,
             "metrics": json.dumps({"val_rmse_teff": 120.0})})
        conn.execute(sa.text(
            "UPDATE latentvo.models SET metrics = (metrics::jsonb || CAST(:extra AS jsonb))::text "
            "WHERE model_id = 'card-labels'"),
            {"extra": json.dumps({"by_snr": BY_SNR, "best_epoch": 2, "device": "cpu"})})
    return "card-ae", "card-labels"


@pytest.fixture(scope="module")
def site(database, latentvo_env, trained):
    """A server without a configured base URL: every URL follows the request."""
    proc, url = start_server(latentvo_env, set_base_url=False)
    yield url
    stop_server(proc)


def card_json(site: str, model_id: str) -> dict:
    r = httpx.get(f"{site}/models/{model_id}/card.json", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    card = r.json()
    assert card_problems(card) == []
    return card


def jsonld(page: str) -> dict:
    """The schema.org JSON-LD of an HTML page."""
    return json.loads(page.split('<script type="application/ld+json">', 1)[1]
                      .split("</script>", 1)[0])


def test_autoencoder_card(site, trained, database):
    ae, labels = trained
    card = card_json(site, ae)
    assert card["format"] == CARD_FORMAT and card["kind"] == "autoencoder"
    assert card["profile"] == "cpu" and card["random_seed"] == 3 and card["code_version"]
    assert card["urls"]["card"] == f"{site}/models/{ae}"
    with database.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT training_checksum, training_size FROM "
                                   "latentvo.models WHERE model_id = :m"), {"m": ae}).one()
    assert card["training_data"]["checksum"] == row.training_checksum
    assert card["training_data"]["size"] == row.training_size == 300
    assert card["training_data"]["grid"]["n_pixels"] == 256
    assert card["training_data"]["grid_choice"]["range"] == "common"  # the cpu profile's
    assert card["metrics"]["training"]["epochs_run"] == 3
    assert card["metrics"]["by_snr"] is None and card["metrics"]["goals"] is None
    space = card["latent_space"]
    assert len(space["dimensions"]) == 8
    assert space["informative_dims"] == [d["dim"] for d in space["dimensions"]
                                         if d["informative"]]
    assert {"teff", "rv"} <= set(space["dimensions"][0]["mutual_information_nats"])
    assert card["intended_use"] and card["limitations"]
    page = httpx.get(f"{site}/models/{ae}", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"{len(space['informative_dims'])} of 8 latent dimensions are informative" in page.text
    assert row.training_checksum in page.text and "Noise limit" in page.text
    assert "&quot;range&quot;: &quot;common&quot;" in page.text  # grid choice's range


def test_label_model_card(site, trained):
    ae, labels = trained
    card = card_json(site, labels)
    assert card["kind"] == "label-regressor" and card["base_model_id"] == ae
    assert card["urls"]["base_model_card"] == f"{site}/models/{ae}"
    label_set = card["training_data"]["label_set"]
    assert label_set["name"] == LABEL_SET and len(label_set["source_sha256"]) == 64
    assert label_set["source_file"] == "reference_labels.csv"  # the name, never the path
    assert {"teff", "logg", "mh"} <= set(label_set["quantities"]) and label_set["rows"] > 0
    assert card["label_sets"][0] == label_set
    bins = card["metrics"]["by_snr"]
    assert [b["flag_goal_met"] for b in bins] == [False, True]
    assert [b["labels"]["teff"]["z_std_goal_met"] for b in bins] == [False, True]
    assert [b["labels"]["teff"]["coverage_68_goal_met"] for b in bins] == [False, True]
    assert card["metrics"]["training"] == {"epochs_run": card["metrics"]["training"]
                                           ["epochs_run"], "best_epoch": 2,
                                           "train_seconds": card["metrics"]["training"]
                                           ["train_seconds"], "device": "cpu"}
    assert "domain_threshold" in card["domain"]["recorded"]
    assert "val_z_std_teff" in card["calibration"]["recorded"]
    assert card["noise_limit"]["recorded"] is None
    assert "bench/ml_quality.py" in card["noise_limit"]["measured_in"]
    assert "metrics.by_snr" not in card["not_recorded"]
    assert bins[1]["labels"]["teff"]["crb_ratio"] == 1.43
    page = httpx.get(f"{site}/models/{labels}", timeout=30).text
    assert "Per S/N bin" in page and "misses the goal" in page
    assert "in_domain" in page and LABEL_SET in page
    assert "cov. 95 %, crb_ratio</th>" in page and "<td>1.43</td>" in page
    about = jsonld(page)
    assert about["name"] == labels and about["isBasedOn"] == f"{site}/models/{ae}"
    assert about["encoding"]["contentUrl"] == f"{site}/models/{labels}/card.json"


def test_older_model_says_not_recorded_and_escapes(site, trained):
    card = card_json(site, quote(OLD, safe=""))
    assert card["model_id"] == OLD and card["training_data"]["selection"] == OLD_SELECTION
    assert card["profile"] is None and card["metrics"]["by_snr"] is None
    assert {"profile", "training_data.label_set", "metrics.by_snr",
            "metrics.training.epochs_run"} <= set(card["not_recorded"])
    assert card["metrics"]["validation"] == {"val_rmse_teff": 120.0}
    r = httpx.get(card["urls"]["card"], timeout=30)
    assert r.status_code == 200
    assert "<b>bright</b>" not in r.text and OLD not in r.text
    assert "hand-picked &lt;b&gt;bright&lt;/b&gt; stars &amp; &quot;friends&quot;" in r.text
    assert "old&lt;model&gt;&amp;" in r.text and "not recorded" in r.text
    assert jsonld(r.text)["name"] == OLD  # escaped inside the script element, not lost


def test_model_list_in_html_and_json(site, trained):
    ae, labels = trained
    as_json = httpx.get(f"{site}/models", params={"format": "json"}, timeout=30).json()
    ids = [m["model_id"] for m in as_json["models"]]
    assert {ae, labels, OLD} <= set(ids) and ids[-1] == OLD  # newest first
    by_accept = httpx.get(f"{site}/models", headers={"Accept": "application/json"}).json()
    assert by_accept == as_json
    page = httpx.get(f"{site}/models", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert f'href="{site}/models/{labels}"' in page.text and "old&lt;model&gt;" in page.text
    assert httpx.get(f"{site}/models", params={"format": "xml"}).status_code == 400
    landing = httpx.get(f"{site}/").text
    assert f'href="{site}/models"' in landing


def test_unknown_model_is_404(site, trained):
    page = httpx.get(f"{site}/models/no-such-model")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    data = httpx.get(f"{site}/models/no-such-model/card.json")
    assert data.status_code == 404 and "no-such-model" in data.json()["error"]


def test_datalink_documentation_points_to_the_cards(site, trained, database):
    ae, labels = trained
    with database.engine.connect() as conn:
        did = conn.scalar(sa.text(
            "SELECT s.obs_publisher_did FROM latentvo.spectra s JOIN latentvo.labels l "
            "USING (spectrum_id) WHERE l.model_id = :m LIMIT 1"), {"m": labels})
    r = httpx.get(f"{site}/datalink/links", params={"ID": did}, timeout=30)
    table = parse_single_table(io.BytesIO(r.content)).to_table()
    docs = table[table["semantics"] == "#documentation"]
    cards = {row["access_url"]: row for row in docs if row["content_type"] == "text/html"}
    assert set(cards) == {f"{site}/models/{ae}", f"{site}/models/{labels}"}
    assert any("latentvo.models" in str(row["access_url"]) for row in docs)  # the TAP row too
    for url in cards:
        assert httpx.get(url, timeout=30).status_code == 200


def test_tap_returns_card_urls_with_the_request_base(site, trained):
    ae, labels = trained
    query = ("SELECT m.model_id, c.card_url, c.card_json_url FROM latentvo.models AS m "
             "JOIN latentvo.model_cards AS c ON c.model_id = m.model_id ORDER BY m.model_id")
    for base in (site, site.replace("127.0.0.1", "localhost")):
        r = httpx.get(f"{base}/tap/sync", params={"REQUEST": "doQuery", "LANG": "ADQL",
                                                  "FORMAT": "csv", "QUERY": query}, timeout=30)
        rows = {row["model_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
        assert rows[ae]["card_url"] == f"{base}/models/{ae}"
        assert rows[labels]["card_json_url"] == f"{base}/models/{labels}/card.json"
        assert rows[OLD]["card_url"] == f"{base}/models/old%3Cmodel%3E%26"
        assert httpx.get(rows[labels]["card_json_url"], timeout=30).json()["model_id"] == labels


def test_view_matches_declaration_and_migration(database, trained):
    spec = util.spec_from_file_location("migration_0011", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert " ".join(migration.MODEL_CARDS_VIEW.split()) == " ".join(view_sql().split())
    with database.engine.connect() as conn:
        columns = conn.scalars(sa.text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "'latentvo' AND table_name = 'model_cards' ORDER BY ordinal_position")).all()
        assert columns == [c.name for c in model_cards.columns]
        paths = dict(conn.execute(sa.text(
            "SELECT model_id, card_url FROM latentvo.model_cards")).all())
    assert paths["card-ae"] == "/models/card-ae"  # no base outside a TAP query
