"""The explorer page in a real browser (Debian's chromium driven by Playwright) against a
real ``latentvo serve`` with a small trained model, and its JSON API's errors.

The browser test loads the page, moves a slider from the keyboard, checks that the
spectrum was redrawn and the neighbour list changed, loads a neighbour, uploads a
file and checks the similarity table. Each step's screenshot is written to
``$LATENTVO_TEST_SCREENSHOTS`` (default: the test's temporary folder); two of them are
in docs/explorer.md.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import time
from pathlib import Path

import httpx
import pytest
from astropy.io.votable import parse_single_table

from ml.analysis import analyse
from ml.infer import infer
from ml.train import AutoencoderConfig, LabelConfig
from ml.training_runs import train_autoencoder_run, train_label_run
from tests.conftest import start_server, stop_server
from tests.ml.conftest import LABEL_SET, ml_archive  # noqa: F401 - a fixture used here

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AE = AutoencoderConfig(latent_dim=8, epochs=4, channels=(8, 16, 32), hidden=64, profile="cpu")
LABELS = LabelConfig(epochs=4, members=2, channels=(8, 16, 32), hidden=64)
MODEL = "explore-ae"


@pytest.fixture(scope="module")
def explorer_server(database, settings, latentvo_env, ml_archive):  # noqa: F811
    """A server over the 300-spectrum archive with an analysed (mapped) autoencoder and a
    label model; yields its base URL and the archive's folder (files to upload)."""
    train_autoencoder_run(database.engine, settings, model_id=MODEL, config=AE,
                          n_pixels=256, seed=3, progress=False)
    train_label_run(database.engine, settings, label_set=LABEL_SET, autoencoder_id=MODEL,
                    model_id="explore-labels", config=LABELS, seed=3, progress=False)
    for model_id in ("explore-labels", MODEL):
        infer(database.engine, settings, model_id)
    analyse(database.engine, settings, MODEL, label_set=LABEL_SET, sample=300)
    proc, url = start_server(latentvo_env)
    yield url, ml_archive
    stop_server(proc)


@pytest.fixture
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("LATENTVO_TEST_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _spectrum_file(archive: Path) -> Path:
    return next(p for p in sorted(archive.rglob("*")) if p.is_file()
                and p.suffix.lower() in (".fits", ".xml", ".vot", ".csv", ".gz")
                and "reference_labels" not in p.name)


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, driven by Playwright (never its own download)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (scripts/test.sh installs it as root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, explorer_server):
    """The explorer page, loaded on the map's first spectrum; fails on a script error."""
    url, _ = explorer_server
    tab = browser.new_page(viewport={"width": 1100, "height": 1400})
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(f"{url}/explore")
    tab.wait_for_selector("#spectrum[data-draws]")
    tab.wait_for_selector("#neighbours tbody tr")
    yield tab
    tab.close()
    assert not errors


def test_page_slider_and_neighbours(page, screenshots):
    assert page.locator("#map").get_attribute("aria-label").startswith("Map of 300 spectra")
    assert page.locator("label[for=model]").count() == 1
    page.screenshot(path=str(screenshots / "explorer-1-loaded.png"), full_page=True)
    _record(screenshots, first_contentful_paint_ms=page.evaluate(
        "performance.getEntriesByName('first-contentful-paint')[0].startTime"),
        first_spectrum_drawn_ms=float(page.locator("#explorer").get_attribute(
            "data-first-spectrum-ms")))

    # move a slider from the keyboard
    before_rows = page.locator("#neighbours tbody").inner_text()
    before_plot = page.evaluate("document.getElementById('spectrum').toDataURL()")
    draws = int(page.locator("#spectrum").get_attribute("data-draws"))
    slider = page.locator("#sliders input[type=range]").first
    assert page.locator(f"label[for={slider.get_attribute('id')}]").count() == 1
    slider.focus()
    for _ in range(100):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        f"Number(document.getElementById('spectrum').dataset.draws) > {draws}")
    page.wait_for_function("document.getElementById('status').textContent"
                           ".startsWith('Decoded')")
    assert page.evaluate("document.getElementById('spectrum').toDataURL()") != before_plot
    assert "decoded" in page.locator("#spectrum").get_attribute("aria-label")
    if page.locator("#neighbours tbody").inner_text() == before_rows:
        page.keyboard.press("End")  # the far end of the archive's range
        page.wait_for_function(
            "t => document.querySelector('#neighbours tbody').innerText !== t",
            arg=before_rows)
    assert page.locator("#neighbours tbody tr").count() == 10
    assert "lvo_latent_distance" in httpx.URL(
        page.locator("#adql-link").get_attribute("href")).params["QUERY"]
    page.screenshot(path=str(screenshots / "explorer-2-slider.png"), full_page=True)

    # load a neighbour
    marker = page.locator("#map").get_attribute("data-marker")  # the first one's point
    chosen = page.locator("#neighbours tbody button").nth(1)
    did = chosen.inner_text()
    chosen.click()
    page.wait_for_function("d => document.getElementById('spectrum-id').value === d",
                           arg=did)
    assert did in page.locator("#spectrum-caption").inner_text()
    page.screenshot(path=str(screenshots / "explorer-3-neighbour.png"), full_page=True)

    # a click on the first spectrum's point of the map loads the spectrum drawn there
    # (it, or one drawn on top of it: the map's clusters are dense)
    x, y = (float(v) for v in marker.split(","))
    loads = int(page.locator("#explorer").get_attribute("data-loads"))
    page.locator("#map").click(position={"x": x, "y": y})
    page.wait_for_function(
        f"Number(document.getElementById('explorer').dataset.loads) > {loads}")
    mx, my = (float(v) for v in page.locator("#map").get_attribute("data-marker").split(","))
    assert (mx - x) ** 2 + (my - y) ** 2 <= 100  # within the click's reach (10 px)


def test_upload_shows_similar_spectra(page, explorer_server, screenshots):
    """Similarity by uploaded file: the page posts it to ``POST /similar``."""
    _, archive = explorer_server
    upload = _spectrum_file(archive)
    page.set_input_files("#upload", str(upload))
    page.fill("#upload-k", "5")
    page.click("#by-upload button[type=submit]")
    page.wait_for_selector("#upload-table tbody tr")
    assert page.locator("#upload-table tbody tr").count() == 5
    # an archive file uploaded again lands on its own stored vector: nearest is itself
    nearest = page.locator("#upload-table tbody button").first.inner_text()
    assert nearest.endswith(upload.name.split(".")[0]), (nearest, upload.name)
    page.screenshot(path=str(screenshots / "explorer-4-upload.png"), full_page=True)
    page.locator("#upload-table tbody button").first.click()
    page.wait_for_function("document.getElementById('status').textContent"
                           ".startsWith('Loaded')")


def test_api_answers_and_errors(explorer_server, screenshots):
    url, _ = explorer_server
    api = f"{url}/explore/api"
    models = httpx.get(f"{api}/models").json()
    assert models[0]["model_id"] == MODEL and models[0]["map_points"] == 300
    described = httpx.get(f"{api}/model", params={"MODEL": MODEL}).json()
    assert len(described["wavelength"]) == 256 and described["wavelength_unit"] == "Angstrom"
    dims = described["dimensions"]
    assert dims and all(d["min"] < d["mean"] < d["max"] for d in dims)
    points = httpx.get(f"{api}/map", params={"MODEL": MODEL}).json()
    assert len(points["x"]) == 300 and sum(v is not None for v in points["teff"]) > 0
    did = points["did"][0]
    view = httpx.get(f"{api}/spectrum", params={"MODEL": MODEL, "ID": did}).json()
    assert len(view["flux"]) == len(view["reconstruction"]) == 256
    assert len(view["neighbours"]) == 10 and did not in {n["did"] for n in view["neighbours"]}
    latent = ",".join(str(v) for v in view["latent"])
    decoded = httpx.get(f"{api}/decode", params=[("MODEL", MODEL), ("LATENT", latent),
                                                 ("LATENT", latent)]).json()
    assert len(decoded) == 2 and len(decoded[0]["flux"]) == 256
    assert decoded[0]["neighbours"][0]["did"] == did  # its own point: itself nearest
    _record_times(screenshots, api, latent)
    votable = httpx.get(f"{api}/decoded.xml", params={"MODEL": MODEL, "LATENT": latent})
    assert votable.status_code == 200
    table = parse_single_table(io.BytesIO(votable.content))
    assert len(table.array) == 256
    name = view["target_name"]
    if name:
        found = httpx.get(f"{api}/search",
                          params={"MODEL": MODEL, "NAME": name.lower()}).json()
        assert did in {f["did"] for f in found}
    page = httpx.get(f"{url}/explore")
    assert page.status_code == 200 and "explore.js" in page.text
    assert httpx.get(f"{url}/explore/static/explore.js").status_code == 200
    assert "/explore" in httpx.get(f"{url}/").text
    links = httpx.get(f"{url}/datalink/links", params={"ID": did}).text
    assert "#auxiliary" in links and "/explore?ID=" in links

    bad = [("spectrum", {"MODEL": MODEL, "ID": "ivo://nowhere/none"}, 404),
           ("spectrum", {"MODEL": "no-such-model", "ID": did}, 404),
           ("spectrum", {"MODEL": MODEL}, 400),
           ("decode", {"MODEL": MODEL, "LATENT": "1,2"}, 400),
           ("decode", {"MODEL": MODEL, "LATENT": "a,b"}, 400),
           ("decode", {"MODEL": MODEL, "LATENT": ",".join(["1e300"] * len(view["latent"]))},
            400),
           ("decode", {"MODEL": MODEL, "LATENT": ",".join(["nan"] * len(view["latent"]))},
            400),
           ("decode", {"MODEL": MODEL, "LATENT": latent, "RESOLVING_POWER": "-3"}, 400),
           ("decode", [("MODEL", MODEL)] + [("LATENT", latent)] * 17, 400),
           ("search", {"MODEL": MODEL}, 400)]
    for path, params, status in bad:
        answer = httpx.get(f"{api}/{path}", params=params)
        assert answer.status_code == status, (path, params, answer.text)
        assert "QUERY_STATUS" in answer.text and "ERROR" in answer.text


def _record_times(folder: Path, api: str, latent: str) -> None:
    """Write (never assert) the median time of a slider's decode + neighbours call, as
    the client sees it on loopback, beside the screenshots."""
    with httpx.Client() as client:
        times = []
        for _ in range(30):
            started = time.perf_counter()
            client.get(f"{api}/decode", params={"MODEL": MODEL, "LATENT": latent})
            times.append(time.perf_counter() - started)
    _record(folder, decode_and_neighbours_p50_ms=round(1000 * statistics.median(times), 1))


def _record(folder: Path, **times: float) -> None:
    path = folder / "explorer-timings.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**known, **times}, indent=1))
