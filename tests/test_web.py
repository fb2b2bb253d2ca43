"""The web service over real HTTP."""

import httpx


def test_landing_page(server):
    response = httpx.get(server + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "latentvo" in response.text and "spectra" in response.text
