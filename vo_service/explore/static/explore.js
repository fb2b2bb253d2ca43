// The latent-space explorer (page: vo_service/explore/page.py, API: /explore/api/).
//
// Plain canvas drawing rather than a plotting library: the page draws two line plots
// and one scatter plot, about 150 lines of code here, where a library (uPlot, ~50 kB)
// would add an npm lockfile, a build step in setup and files to ship in the wheel for
// no feature the page uses. Nothing is fetched from outside this service.
"use strict";

(function () {
  const root = document.getElementById("explorer");
  const API = root.dataset.api;
  const TAP = root.dataset.tap;
  const SIMILAR = root.dataset.similar;
  const $ = (id) => document.getElementById(id);
  const state = {model: null, map: null, view: null, latent: null, decoded: null,
                 busy: false, pending: false, decodes: 0};

  // -- talking to the service ---------------------------------------------------------

  async function failure(response) {
    // The service answers errors as DALI VOTable documents: show their QUERY_STATUS text.
    const text = await response.text();
    const doc = new DOMParser().parseFromString(text, "application/xml");
    const info = [...doc.getElementsByTagName("INFO")]
      .find((i) => i.getAttribute("name") === "QUERY_STATUS");
    return new Error((info && info.textContent.trim()) || `HTTP ${response.status}`);
  }

  async function api(path, params) {
    const query = new URLSearchParams(params);
    const response = await fetch(`${API}/${path}?${query}`);
    if (!response.ok) throw await failure(response);
    return response.json();
  }

  function status(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.className = isError ? "error" : "";
  }

  // -- plots ----------------------------------------------------------------------------

  function niceTicks(lo, hi, count) {
    const span = hi - lo || 1;
    const raw = span / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(t);
    return ticks;
  }

  function extent(arrays) {
    let lo = Infinity, hi = -Infinity;
    for (const a of arrays) for (const v of a) if (v !== null && isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!isFinite(lo)) return [0, 1];
    const pad = (hi - lo) * 0.05 || 0.5;
    return [lo - pad, hi + pad];
  }

  function frame(canvas, xRange, yRange, xLabel, yLabel) {
    const ctx = canvas.getContext("2d");
    const box = {left: 64, right: canvas.width - 12, top: 22, bottom: canvas.height - 40};
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const sx = (x) => box.left + (x - xRange[0]) / (xRange[1] - xRange[0]) * (box.right - box.left);
    const sy = (y) => box.bottom - (y - yRange[0]) / (yRange[1] - yRange[0]) * (box.bottom - box.top);
    ctx.strokeStyle = "#222";
    ctx.fillStyle = "#222";
    ctx.font = "12px sans-serif";
    ctx.strokeRect(box.left, box.top, box.right - box.left, box.bottom - box.top);
    ctx.textAlign = "center";
    for (const t of niceTicks(xRange[0], xRange[1], 8)) {
      ctx.fillText(+t.toPrecision(6), sx(t), box.bottom + 14);
      ctx.beginPath(); ctx.moveTo(sx(t), box.bottom); ctx.lineTo(sx(t), box.bottom - 4); ctx.stroke();
    }
    ctx.fillText(xLabel, (box.left + box.right) / 2, canvas.height - 6);
    ctx.textAlign = "right";
    for (const t of niceTicks(yRange[0], yRange[1], 4)) {
      ctx.fillText(+t.toPrecision(4), box.left - 4, sy(t) + 4);
      ctx.beginPath(); ctx.moveTo(box.left, sy(t)); ctx.lineTo(box.left + 4, sy(t)); ctx.stroke();
    }
    ctx.save();
    ctx.translate(14, (box.top + box.bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText(yLabel, 0, 0);
    ctx.restore();
    return {ctx, sx, sy, box};
  }

  function linePlot(canvas, x, series, yLabel, description) {
    const xUnit = `Wavelength (${state.model.wavelength_unit}, ${state.model.wavelength_frame})`;
    const p = frame(canvas, [x[0], x[x.length - 1]], extent(series.map((s) => s.y)), xUnit, yLabel);
    p.ctx.save();
    p.ctx.beginPath();
    p.ctx.rect(p.box.left, p.box.top, p.box.right - p.box.left, p.box.bottom - p.box.top);
    p.ctx.clip();
    series.forEach((s) => {
      p.ctx.strokeStyle = s.colour;
      p.ctx.lineWidth = s.width || 1;
      p.ctx.beginPath();
      let drawing = false;
      s.y.forEach((v, i) => {
        if (v === null) { drawing = false; return; }
        if (drawing) p.ctx.lineTo(p.sx(x[i]), p.sy(v)); else p.ctx.moveTo(p.sx(x[i]), p.sy(v));
        drawing = true;
      });
      p.ctx.stroke();
    });
    p.ctx.restore();
    p.ctx.textAlign = "left";
    let at = p.box.left;  // the legend, in one line above the plot
    series.forEach((s) => {
      p.ctx.fillStyle = s.colour;
      p.ctx.fillRect(at, 9, 14, 3);
      p.ctx.fillText(s.label, at + 18, 15);
      at += 30 + p.ctx.measureText(s.label).width;
    });
    canvas.setAttribute("aria-label", description);
  }

  // -- the map ----------------------------------------------------------------------------

  function colourOf(value, lo, hi, quantity) {
    if (value === null || value === undefined) return "#bbb";
    if (quantity === "in_domain") return value ? "#1b7837" : "#c51b7d";
    const t = Math.max(0, Math.min(1, (value - lo) / (hi - lo || 1)));
    // blue (low) to red (high) through pale yellow
    const r = Math.round(t < 0.5 ? 49 + 410 * t : 254 - 60 * (t - 0.5) * 2);
    const g = Math.round(t < 0.5 ? 54 + 380 * t : 244 - 400 * (t - 0.5));
    const b = Math.round(t < 0.5 ? 149 + 120 * t : 209 - 360 * (t - 0.5));
    return `rgb(${r},${g},${b})`;
  }

  function drawMap() {
    const canvas = $("map");
    const m = state.map;
    if (!m || !m.x.length) {
      const ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      canvas.setAttribute("aria-label", "No map for this model: run 'latentvo ml analyse'");
      $("legend").textContent = "no map yet (latentvo ml analyse writes it)";
      return;
    }
    const quantity = $("colour").value;
    const values = m[quantity].filter((v) => v !== null);
    const [lo, hi] = quantity === "in_domain" ? [0, 1] : extent([values]);
    const p = frame(canvas, extent([m.x]), extent([m.y]), "map x", "map y");
    m.x.forEach((x, i) => {
      p.ctx.fillStyle = colourOf(m[quantity][i], lo, hi, quantity);
      p.ctx.fillRect(p.sx(x) - 1.5, p.sy(m.y[i]) - 1.5, 3, 3);
    });
    if (state.view) {
      const i = m.did.indexOf(state.view.did);
      if (i >= 0) {
        p.ctx.strokeStyle = "#000";
        p.ctx.lineWidth = 2;
        p.ctx.beginPath(); p.ctx.arc(p.sx(m.x[i]), p.sy(m.y[i]), 6, 0, 2 * Math.PI); p.ctx.stroke();
        canvas.dataset.marker = `${p.sx(m.x[i]).toFixed(1)},${p.sy(m.y[i]).toFixed(1)}`;
      }
    }
    state.mapScale = p;
    $("legend").textContent = quantity === "in_domain" ? "green: in domain, pink: out, grey: no labels"
      : `blue ${lo.toPrecision(4)} to red ${hi.toPrecision(4)}; grey: no labels`;
    canvas.setAttribute("aria-label", `Map of ${m.x.length} spectra of model ` +
      `${state.model.model_id}, coloured by ${$("colour").selectedOptions[0].text}`);
  }

  function mapClick(event) {
    const m = state.map, p = state.mapScale;
    if (!m || !p) return;
    const rect = event.target.getBoundingClientRect();
    const cx = (event.clientX - rect.left) * event.target.width / rect.width;
    const cy = (event.clientY - rect.top) * event.target.height / rect.height;
    let best = -1, bestD = 100;
    m.x.forEach((x, i) => {
      const d = (p.sx(x) - cx) ** 2 + (p.sy(m.y[i]) - cy) ** 2;
      if (d < bestD) { bestD = d; best = i; }
    });
    if (best >= 0) loadSpectrum(m.did[best]);
  }

  // -- spectrum, sliders, neighbours ------------------------------------------------------

  function format(v, digits) {
    return v === null || v === undefined ? "" : (typeof v === "boolean" ? (v ? "yes" : "no")
      : Number(v).toFixed(digits));
  }

  function drawSpectrum() {
    const v = state.view, x = state.model.wavelength;
    const moved = state.decoded !== null;
    const series = [{y: v.flux, colour: "#555", label: "observed"},
                    {y: v.reconstruction, colour: "#2166ac", width: 1.5, label: "reconstruction"}];
    if (moved) series.push({y: state.decoded, colour: "#d6604d", width: 1.5, label: "decoded (moved point)"});
    const model = moved ? state.decoded : v.reconstruction;
    const residual = v.flux.map((f, i) => (f === null || model[i] === null ? null : f - model[i]));
    linePlot($("spectrum"), x, series, "Normalised flux",
      `Spectrum ${v.target_name || v.did}: observed flux, its reconstruction` +
      (moved ? " and the spectrum decoded from the moved latent point" : ""));
    linePlot($("residuals"), x, [{y: residual, colour: "#333", label:
      moved ? "observed - decoded" : "observed - reconstruction"}], "Residual",
      "Residuals of the observed spectrum against the " + (moved ? "decoded" : "reconstructed") + " spectrum");
    $("spectrum").dataset.draws = String(++state.decodes);
    if (!root.dataset.firstSpectrumMs) root.dataset.firstSpectrumMs = performance.now().toFixed(0);
  }

  function buildSliders() {
    const box = $("sliders");
    box.textContent = "";
    const dims = state.model.dimensions;
    if (!dims.length) {
      box.textContent = "No informative dimensions recorded: run 'latentvo ml analyse'.";
      return;
    }
    dims.forEach((d) => {
      const row = document.createElement("div");
      row.className = "slider";
      const id = `dim-${d.dim}`;
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = `z${d.dim}` + (d.tracks ? `: tracks ${d.tracks}` +
        ` (MI ${d.mutual_information.toFixed(2)} nats)` : "");
      const input = document.createElement("input");
      Object.assign(input, {type: "range", id, min: d.min, max: d.max,
                            step: (d.max - d.min) / 200, value: d.mean});
      input.dataset.dim = d.dim;
      const out = document.createElement("output");
      out.htmlFor = id;
      out.id = `${id}-value`;
      const range = document.createElement("span");
      range.className = "range";
      range.textContent = `archive range ${d.min.toFixed(2)} to ${d.max.toFixed(2)}`;
      input.addEventListener("input", () => {
        state.latent[d.dim] = Number(input.value);
        out.textContent = Number(input.value).toFixed(3);
        requestDecode();
      });
      row.append(label, input, out, range);
      box.append(row);
    });
  }

  function setSliders() {
    for (const input of $("sliders").querySelectorAll("input[type=range]")) {
      input.value = state.latent[Number(input.dataset.dim)];
      $(`${input.id}-value`).textContent = Number(input.value).toFixed(3);
    }
  }

  function showNeighbours(rows) {
    const body = $("neighbours").tBodies[0];
    body.textContent = "";
    rows.forEach((r, i) => {
      const tr = body.insertRow();
      tr.insertCell().textContent = String(i + 1);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "load";
      button.textContent = r.did;
      button.addEventListener("click", () => loadSpectrum(r.did));
      tr.insertCell().append(button);
      tr.insertCell().textContent = r.target_name || "";
      tr.insertCell().textContent = format(r.distance, 4);
      tr.insertCell().textContent = format(r.teff, 0);
      tr.insertCell().textContent = format(r.logg, 2);
      tr.insertCell().textContent = format(r.mh, 2);
      tr.insertCell().textContent = format(r.in_domain);
    });
  }

  function latentParams() {
    const params = [["MODEL", state.model.model_id], ["LATENT", state.latent.join(",")]];
    if (state.view && state.view.resolving_power) params.push(["RESOLVING_POWER", state.view.resolving_power]);
    return params;
  }

  function updateLinks() {
    const vector = "[" + state.latent.map((v) => +v.toPrecision(7)).join(",") + "]";
    const model = state.model.model_id.replace(/'/g, "''");
    const adql = `SELECT TOP 10 v.spectrum_id, lvo_latent_distance(v.vec, '${vector}') AS distance ` +
      `FROM latentvo.latent AS v WHERE v.model_id = '${model}' ORDER BY distance`;
    $("adql-link").href = `${TAP}/sync?` + new URLSearchParams(
      {REQUEST: "doQuery", LANG: "ADQL", QUERY: adql});
  }

  function requestDecode() {
    updateLinks();
    if (state.busy) { state.pending = true; return; }
    state.busy = true;
    state.pending = false;
    const started = performance.now();
    api("decode", latentParams()).then((result) => {
      state.decoded = result[0].flux;
      drawSpectrum();
      showNeighbours(result[0].neighbours);
      const ms = performance.now() - started;
      $("spectrum").dataset.decodeMs = ms.toFixed(1);
      status(`Decoded the moved point in ${ms.toFixed(0)} ms.`);
    }).catch((e) => status(e.message, true)).finally(() => {
      state.busy = false;
      if (state.pending) requestDecode();
    });
  }

  async function loadSpectrum(did) {
    status(`Loading ${did}\u2026`);
    try {
      const view = await api("spectrum", {MODEL: state.model.model_id, ID: did});
      state.view = view;
      state.latent = view.latent.slice();
      state.decoded = null;
      $("spectrum-id").value = view.did;
      const labels = view.labels || {};
      $("spectrum-caption").textContent = `${view.target_name || ""} ${view.did}` +
        (labels.teff !== undefined ? ` \u2014 Teff ${format(labels.teff, 0)} K, log g ` +
          `${format(labels.logg, 2)}, [M/H] ${format(labels.mh, 2)}, in domain ` +
          `${format(labels.in_domain)}` : "") +
        (view.snr ? ` \u2014 S/N ${format(view.snr, 0)}` : "");
      setSliders();
      drawSpectrum();
      showNeighbours(view.neighbours);
      updateLinks();
      drawMap();
      history.replaceState(null, "", "?" + new URLSearchParams({MODEL: state.model.model_id, ID: did}));
      root.dataset.loads = String(Number(root.dataset.loads || 0) + 1);
      status(`Loaded ${view.target_name || view.did}.`);
    } catch (e) {
      status(e.message, true);
    }
  }

  async function selectModel(modelId, did) {
    status(`Loading model ${modelId}\u2026`);
    try {
      state.model = await api("model", {MODEL: modelId});
      state.map = await api("map", {MODEL: modelId});
    } catch (e) {
      status(e.message, true);
      return;
    }
    buildSliders();
    drawMap();
    const first = did || (state.map.did.length ? state.map.did[0] : null);
    if (first) await loadSpectrum(first);
    else status("This model has no map yet; load a spectrum by ID or name.");
  }

  // -- search and upload ----------------------------------------------------------------

  async function searchByName(event) {
    event.preventDefault();
    const list = $("search-results");
    list.textContent = "";
    try {
      const found = await api("search", {MODEL: state.model.model_id, NAME: $("name").value});
      if (!found.length) status("No spectrum has that name.");
      found.forEach((r) => {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = `${r.target_name || r.obs_id} (${r.did})`;
        button.addEventListener("click", () => loadSpectrum(r.did));
        li.append(button);
        list.append(li);
      });
    } catch (e) {
      status(e.message, true);
    }
  }

  async function upload(event) {
    event.preventDefault();
    const file = $("upload").files[0];
    if (!file) { status("Choose a spectrum file first.", true); return; }
    const form = new FormData();
    form.append("UPLOAD", file);
    form.append("K", $("upload-k").value);
    form.append("MODEL", state.model.model_id);
    form.append("RESPONSEFORMAT", "application/json");
    status(`Searching the spectra most similar to ${file.name}\u2026`);
    const response = await fetch(SIMILAR, {method: "POST", body: form});
    if (!response.ok) { status((await failure(response)).message, true); return; }
    const result = await response.json();
    const names = result.columns.map((c) => c.name);
    // the columns a reader compares; the URLs become links
    const shown = ["rank", "obs_publisher_did", "target_name", "distance", "snr", "teff",
                   "logg", "mh", "in_domain", "access_url", "datalink_url"]
      .filter((n) => names.includes(n));
    const table = document.createElement("table");
    table.id = "upload-table";
    table.createCaption().textContent = `Archive spectra most similar to ${file.name}`;
    const head = table.createTHead().insertRow();
    shown.forEach((n) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = {access_url: "file", datalink_url: "links"}[n] || n;
      head.append(th);
    });
    const body = table.createTBody();
    result.data.forEach((row) => {
      const tr = body.insertRow();
      shown.forEach((n) => {
        const v = row[names.indexOf(n)];
        const cell = tr.insertCell();
        if (n === "obs_publisher_did" && v) {
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = v;
          button.addEventListener("click", () => loadSpectrum(v));
          cell.append(button);
        } else if ((n === "access_url" || n === "datalink_url") && v) {
          const a = document.createElement("a");
          a.href = v;
          a.textContent = n === "access_url" ? "file" : "links";
          cell.append(a);
        } else {
          cell.textContent = typeof v === "number" ? +v.toPrecision(5) : (v === null ? "" : String(v));
        }
      });
    });
    const own = document.createElement("p");
    const q = result.query || {};
    own.id = "upload-labels";
    own.textContent = `${file.name}: ` + (q.labels ? `Teff ${format(q.labels.teff, 0)} K, ` +
      `log g ${format(q.labels.logg, 2)}, [M/H] ${format(q.labels.mh, 2)}, in domain ` +
      `${format(q.in_domain)}, ` : "") + (q.rv !== undefined ? `RV ${format(q.rv, 1)} km/s` : "");
    $("upload-result").replaceChildren(own, table);
    status(`${result.data.length} similar spectra found for ${file.name}.`);
  }

  // -- start ----------------------------------------------------------------------------

  async function start() {
    const asked = new URLSearchParams(location.search);
    let models;
    try {
      models = await api("models", {});
    } catch (e) {
      status(e.message, true);
      return;
    }
    if (!models.length) {
      status("No autoencoder has latent vectors yet: train one and run 'latentvo ml infer'.", true);
      return;
    }
    const select = $("model");
    models.forEach((m) => select.append(new Option(
      `${m.model_id} (${m.latent_dim} dimensions, ${m.map_points} mapped)`, m.model_id)));
    if (asked.get("MODEL") && models.some((m) => m.model_id === asked.get("MODEL"))) {
      select.value = asked.get("MODEL");
    }
    select.addEventListener("change", () => selectModel(select.value, null));
    $("colour").addEventListener("change", drawMap);
    $("map").addEventListener("click", mapClick);
    $("by-id").addEventListener("submit", (e) => { e.preventDefault(); loadSpectrum($("spectrum-id").value.trim()); });
    $("by-name").addEventListener("submit", searchByName);
    $("by-upload").addEventListener("submit", (e) => upload(e).catch((err) => status(err.message, true)));
    $("reset").addEventListener("click", () => { if (state.view) loadSpectrum(state.view.did); });
    $("download").addEventListener("click", () => {
      location.href = `${API}/decoded.xml?` + new URLSearchParams(latentParams());
    });
    await selectModel(select.value, asked.get("ID"));
  }

  start();
})();
