"""The HTML of model cards and of the model list, rendered from the card dicts.

Every value comes from the database (model ids, selections, label-set file names are
written by operators), so every value is escaped; what a record lacks reads "not
recorded".
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from vo_service.model_cards.card import FLAG_RATE_MAX, GOAL_RANGES

_STYLE = ("<style>body{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em}"
          "th{text-align:left;padding-right:1em}td,th{vertical-align:top;padding:.1em .4em}"
          "table.grid{border-collapse:collapse}table.grid td,table.grid th"
          "{border:1px solid #ccc}pre{background:#f4f4f4;padding:.5em;overflow-x:auto}"
          ".missing{color:#777}.miss{color:#a00}</style>")
NOT_RECORDED = '<em class="missing">not recorded</em>'
_SHARED_FIGURES = ("rmse", "z_std", "coverage_68", "coverage_95")
"""The figures every S/N bin has per label (the shared contract); others, such as a ratio
to the noise limit, get columns of their own."""


def _a(href: str, text: str | None = None) -> str:
    return f'<a href="{escape(href)}">{escape(text if text is not None else href)}</a>'


def _value(value: Any) -> str:
    """One value as HTML: numbers compactly, structures as JSON, None as "not recorded"."""
    if value is None:
        return NOT_RECORDED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return escape(f"{value:.4g}")
    if isinstance(value, (dict, list)):
        return f"<code>{escape(json.dumps(value, sort_keys=True))}</code>"
    return escape(str(value))


def _rows(pairs: list[tuple[str, str]]) -> str:
    """A two-column table; values are HTML already."""
    return "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>"
                               for k, v in pairs) + "</table>"


def _record(values: dict[str, Any]) -> str:
    """A recorded name/value mapping as a table, or "not recorded" when it is empty."""
    if not values:
        return f"<p>{NOT_RECORDED}</p>"
    return _rows([(k, _value(v)) for k, v in values.items()])


def _label_set(s: dict[str, Any]) -> str:
    rows = [("Name", f"<code>{escape(s['name'])}</code>"),
            ("Source file", _value(s.get("source_file"))),
            ("Source file SHA-256", _value(s.get("source_sha256"))),
            ("Rows", _value(s.get("rows"))),
            ("Key column", _value(s.get("key_column"))),
            ("Quantities", _value(", ".join(s["quantities"]) if s.get("quantities") else None)),
            ("Attached", _value(s.get("attached")))]
    if s.get("note"):
        rows.append(("Note", _value(s["note"])))
    return _rows(rows)


def _goal(value: Any, met: Any) -> str:
    """A figure, marked when it misses its goal."""
    text = _value(value)
    return f'<span class="miss" title="misses the goal">{text}</span>' if met is False else text


def _by_snr(bins: list[dict[str, Any]] | None) -> str:
    if bins is None:
        return (f"<p>Per S/N bin: {NOT_RECORDED} (the model was trained before the "
                "per-S/N validation was recorded).</p>")
    quantities = list(dict.fromkeys(q for b in bins for q in b.get("labels", {})))
    extra = {q: list(dict.fromkeys(
        k for b in bins for k in b["labels"].get(q, {})
        if k not in _SHARED_FIGURES and not k.endswith("_goal_met"))) for q in quantities}
    head = ("<tr><th>S/N</th><th>n</th><th>flagged</th>"
            + "".join(f'<th colspan="{4 + len(extra[q])}">{escape(q)}: RMSE, z-std, '
                      f"cov. 68 %, cov. 95 %{''.join(', ' + escape(k) for k in extra[q])}</th>"
                      for q in quantities) + "</tr>")
    body = []
    for b in bins:
        cells = [f"{_value(b.get('snr_min'))}&ndash;{_value(b.get('snr_max'))}",
                 _value(b.get("n")),
                 _goal(b.get("flagged_fraction"), b.get("flag_goal_met"))]
        for q in quantities:
            f = b["labels"].get(q, {})
            cells += [_value(f.get("rmse")), _goal(f.get("z_std"), f.get("z_std_goal_met")),
                      _goal(f.get("coverage_68"), f.get("coverage_68_goal_met")),
                      _goal(f.get("coverage_95"), f.get("coverage_95_goal_met")),
                      *(_value(f.get(k)) for k in extra[q])]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    low, high = GOAL_RANGES["z_std"]
    return (f'<table class="grid">{head}{"".join(body)}</table>\n'
            f"<p>Held-out stars after calibration; fractions in 0-1. Goals: z-std {low}-{high}, "
            "68 % and 95 % interval coverage within 3 points of nominal, at most "
            f"{FLAG_RATE_MAX:.0%} of in-distribution stars flagged out of "
            "domain; figures missing a goal are shown in red.</p>")


def _latent_space(space: dict[str, Any] | None) -> str:
    if space is None:
        return (f"<p>{NOT_RECORDED}: the latent space has not been analysed "
                "(<code>latentvo ml analyse</code>).</p>")
    informative = [d for d in space["dimensions"] if d["informative"]]
    quantities = list(dict.fromkeys(q for d in informative
                                    for q in d["mutual_information_nats"]))
    head = ("<tr><th>dim</th><th>information</th><th>stddev</th>"
            + "".join(f"<th>MI {escape(q)} (nats)</th>" for q in quantities) + "</tr>")
    body = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in [
            _value(d["dim"]), _value(d["information"]), _value(d["stddev"]),
            *(_value(d["mutual_information_nats"].get(q)) for q in quantities)]) + "</tr>"
        for d in informative)
    return (f"<p>{len(informative)} of {len(space['dimensions'])} latent dimensions are "
            "informative (latentvo.latent_dimensions); their mutual information with each "
            "physical quantity (latentvo.latent_mutual_information):</p>"
            f'<table class="grid">{head}{body}</table>')


def _jsonld(card: dict[str, Any]) -> dict[str, Any]:
    """schema.org metadata of the card's page: the model as a CreativeWork (schema.org
    has no type for trained models)."""
    doc = {"@context": "https://schema.org", "@type": "CreativeWork",
           "additionalType": f"latentvo {card['kind']} model", "name": card["model_id"],
           "identifier": card["model_id"], "url": card["urls"]["card"],
           "dateCreated": card["created"], "version": card["code_version"],
           "license": card["service"]["license_url"],
           "publisher": {"@type": "Organization", "name": card["service"]["publisher"]},
           "encoding": {"@type": "MediaObject", "encodingFormat": "application/json",
                        "contentUrl": card["urls"]["card_json"]}}
    if card["base_model_id"]:
        doc["isBasedOn"] = card["urls"]["base_model_card"]
    return {k: v for k, v in doc.items() if v is not None}


def _jsonld_script(doc: dict[str, Any]) -> str:
    """``doc`` in a ``<script type="application/ld+json">`` element. Model ids and texts
    are the operators', so '<', '>' and '&' are written as JSON escapes: nothing in them
    can end the element or open a comment inside it."""
    text = (json.dumps(doc, indent=1, ensure_ascii=False).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026"))
    return f'<script type="application/ld+json">\n{text}\n</script>'


def card_page(card: dict[str, Any]) -> str:
    """The HTML model card of one model."""
    model_id, urls = card["model_id"], card["urls"]
    training = card["training_data"]
    base = (_a(urls["base_model_card"], card["base_model_id"])
            if urls.get("base_model_card") else _value(None))
    identity = _rows([
        ("Model", f"<code>{escape(model_id)}</code>"), ("Kind", _value(card["kind"])),
        ("Profile", _value(card["profile"])), ("Created", _value(card["created"])),
        ("Code version", _value(card["code_version"])),
        ("Random seed", _value(card["random_seed"])), ("Base model", base),
        ("Latent size", _value(card["latent_dim"])),
        ("Distance metric", _value(card["distance_metric"])),
        ("Artifact SHA-256", _value(card["artifact_sha256"])),
        ("Architecture", _value(card["architecture"])),
        ("Registry row", _a(urls["registry_row"], "latentvo.models (TAP)")),
        ("Machine-readable", _a(urls["card_json"], "card.json"))])
    data = _rows([
        ("Selection", _value(training["selection"])), ("Size", _value(training["size"])),
        ("Checksum", f"{_value(training['checksum'])}<br><small>"
                     f"{escape(training['checksum_covers'])}</small>"),
        ("Wavelength grid", _value(training["grid"])),
        ("Grid choice", _value(training["grid_choice"]))])
    sets = ("".join(_label_set(s) for s in card["label_sets"]) if card["label_sets"]
            else "<p>None: trained without reference labels.</p>")
    metrics = card["metrics"]
    per_snr = _by_snr(metrics["by_snr"]) if card["kind"] == "label-regressor" else ""
    noise = card["noise_limit"]
    latent = (f"<h2>Latent space</h2>\n{_latent_space(card['latent_space'])}"
              if card["kind"] == "autoencoder" else "")
    service = card["service"]
    missing = (f"<p>Not recorded for this model: {escape(', '.join(card['not_recorded']))}.</p>"
               if card["not_recorded"] else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Model card: {escape(model_id)}</title>{_STYLE}
<link rel="alternate" type="application/json" href="{escape(urls['card_json'])}">
{_jsonld_script(_jsonld(card))}
</head>
<body>
<p>{_a(urls['models'], 'All models')}</p>
<h1>Model card: <code>{escape(model_id)}</code></h1>
{identity}
<h2>Training data</h2>
{data}
<h2>Label sets</h2>
{sets}
<h2>Metrics</h2>
<h3>Validation</h3>
{_record(metrics['validation'])}
{('<h3>Per S/N bin</h3>' + per_snr) if per_snr else ''}
<h3>Training</h3>
{_rows([(k, _value(v)) for k, v in metrics['training'].items()])}
<h2>Calibration</h2>
<p>{escape(card['calibration']['method'] or '')}</p>
{_record(card['calibration']['recorded'])}
<h2>Domain</h2>
<p>{escape(card['domain']['definition'] or '')}</p>
{_record(card['domain']['recorded'])}
<h2>Noise limit</h2>
<p>{escape(noise['statement'])}</p>
{_record(noise['recorded'] or {}) if noise['recorded'] else ''}
{latent}
<h2>Intended use</h2>
<ul>{''.join(f'<li>{escape(t)}</li>' for t in card['intended_use'])}</ul>
<h2>Known limits</h2>
<ul>{''.join(f'<li>{escape(t)}</li>' for t in card['limitations'])}</ul>
{missing}
<p>Publisher: {escape(service['publisher'])} &middot; contact: {escape(service['contact'])}
&middot; license: {_a(service['license_url'], service['license'])}</p>
</body></html>
"""


def list_page(entries: list[dict[str, Any]], landing: str) -> str:
    """The HTML list of the registered models, newest first, each with its card."""
    if entries:
        rows = "".join(
            f"<tr><td>{_a(e['card'], e['model_id'])}</td><td>{_value(e['kind'])}</td>"
            f"<td>{_value(e['created'])}</td><td>{_value(e['training_size'])}</td>"
            f"<td>{_value(e['label_set'])}</td><td>{_value(e['base_model_id'])}</td>"
            f"<td>{_a(e['card_json'], 'JSON')}</td></tr>" for e in entries)
        table = ('<table class="grid"><tr><th>Model</th><th>Kind</th><th>Created</th>'
                 "<th>Training spectra</th><th>Label set</th><th>Base model</th><th>Card</th>"
                 f"</tr>{rows}</table>")
    else:
        table = "<p>No model is registered yet.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Models</title>{_STYLE}</head>
<body>
<p>{_a(landing, 'Home')}</p>
<h1>Models</h1>
<p>The models that made this service's latent vectors and labels, newest first; each has a
model card (what it was trained on, how well it does, where it may be used). The same rows
are in the TAP tables <code>latentvo.models</code> and <code>latentvo.model_cards</code>.</p>
{table}
</body></html>
"""
