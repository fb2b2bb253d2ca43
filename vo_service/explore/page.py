"""The HTML of the explorer page (``/explore``).

The page is static HTML: its script (``static/explore.js``) fetches the models, the
map, spectra and decoded points from ``/explore/api/`` and draws them. Every URL it
needs comes from :class:`~vo_service.urls.PublicURLs` through ``data-`` attributes, so
the page works under a sub-path and behind a proxy. Every control has a ``<label>``;
the plots are canvases with ``role="img"`` whose ``aria-label`` the script keeps
describing what they show.
"""

from __future__ import annotations

from html import escape

from vo_service.urls import PublicURLs


def explorer_page(urls: PublicURLs) -> str:
    """The page; it opens on the spectrum of the ``ID`` (and ``MODEL``) query parameters
    when given (the DataLink ``#auxiliary`` link), else on the first point of the map."""
    explore = escape(urls.explore)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Latent-space explorer</title>
<link rel="stylesheet" href="{explore}/static/explore.css">
<script src="{explore}/static/explore.js" defer></script>
</head>
<body>
<main id="explorer" data-api="{explore}/api" data-tap="{escape(urls.tap)}"
 data-similar="{escape(urls.similar_search())}" data-landing="{escape(urls.landing)}">
<h1>Latent-space explorer</h1>
<p><a href="{escape(urls.landing)}">Services of this site</a> &middot; choose a model and a
spectrum; move a slider to decode a new point of the latent space and see the archive's
spectra nearest to it.</p>
<p id="status" role="status" aria-live="polite">Loading&hellip;</p>

<section id="choose" aria-labelledby="choose-title">
<h2 id="choose-title">Model and spectrum</h2>
<div class="row">
<label for="model">Model</label> <select id="model"></select>
</div>
<form id="by-id" class="row">
<label for="spectrum-id">Spectrum ID</label>
<input id="spectrum-id" name="ID" size="40" placeholder="ivo://...">
<button type="submit">Load</button>
</form>
<form id="by-name" class="row">
<label for="name">Target name</label>
<input id="name" name="NAME" size="24">
<button type="submit">Search</button>
</form>
<ul id="search-results" aria-label="Spectra found by name"></ul>
<form id="by-upload" class="row" enctype="multipart/form-data">
<label for="upload">Your spectrum file</label>
<input id="upload" name="UPLOAD" type="file">
<label for="upload-k">Neighbours</label>
<input id="upload-k" name="K" type="number" min="1" max="1000" value="10">
<button type="submit">Find similar</button>
</form>
<div id="upload-result"></div>
</section>

<section id="map-section" aria-labelledby="map-title">
<h2 id="map-title">Map of the latent space</h2>
<div class="row">
<label for="colour">Colour by</label>
<select id="colour">
<option value="teff">Teff</option><option value="logg">log g</option>
<option value="mh">[M/H]</option><option value="in_domain">domain flag</option>
</select>
<span id="legend"></span>
</div>
<canvas id="map" width="480" height="380" role="img"
 aria-label="Map of the latent space (no points yet)"></canvas>
<p class="hint">Click a point to load its spectrum.</p>
</section>

<section id="spectrum-section" aria-labelledby="spectrum-title">
<h2 id="spectrum-title">Spectrum</h2>
<p id="spectrum-caption"></p>
<canvas id="spectrum" width="900" height="320" role="img"
 aria-label="Spectrum plot (nothing loaded yet)"></canvas>
<canvas id="residuals" width="900" height="140" role="img"
 aria-label="Residual plot (nothing loaded yet)"></canvas>
<p class="row">
<a id="adql-link" href="#">Nearest spectra as an ADQL query (TAP)</a>
<button id="download" type="button">Download the decoded spectrum (Spectrum DM VOTable)</button>
<button id="reset" type="button">Back to the spectrum's own point</button>
</p>
</section>

<section id="sliders-section" aria-labelledby="sliders-title">
<h2 id="sliders-title">Latent dimensions</h2>
<div id="sliders"></div>
</section>

<section id="neighbours-section" aria-labelledby="neighbours-title">
<h2 id="neighbours-title">Nearest archive spectra</h2>
<table id="neighbours">
<caption>The archive spectra nearest to the current latent point; choose one to load it.</caption>
<thead><tr><th scope="col">#</th><th scope="col">Spectrum</th><th scope="col">Target</th>
<th scope="col">Distance</th><th scope="col">Teff (K)</th><th scope="col">log g</th>
<th scope="col">[M/H]</th><th scope="col">In domain</th></tr></thead>
<tbody></tbody>
</table>
</section>
</main>
</body></html>
"""
