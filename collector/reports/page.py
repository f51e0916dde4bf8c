"""The resident's page of a report: where it stands, in French or in English, kept up to date.

    GET /open311/follow/{id}        the page (`?lang=fr|en`, else Accept-Language, else French)

It shows the public request only (nothing about who reported it), rendered on the server so it
reads without script. A small script keeps it live: with the follow token a new report's reply
gave (`Citygate-Follow-Page: /open311/follow/<id>#token=<token>`, the token in the fragment so
that it never reaches a log) it listens to the request's event stream, else it reads the public
request every REFRESH_S.
"""

from __future__ import annotations

import html
from typing import Any

import orjson

from collector.i18n import LANGS, t
from collector.reports.model import ReportRow, local_text

PAGE = "/open311/follow"
REFRESH_S = 10


def _when(ms: int | None, lang: str) -> str:
    return "" if ms is None else local_text(ms, lang)


def render(row: ReportRow, lang: str) -> str:
    doc = row.public_json(lang)
    other = next(x for x in LANGS if x != lang)
    labels = {k: t(f"page.{k}", lang) for k in ("status", "note", "service", "address", "requested", "updated",
                                                  "expected", "open", "closed", "live")}
    fields = [("service", doc["service_name"]), ("address", doc["address"] or _coords(doc)),
              ("requested", _when(row.requested_ms, lang)), ("updated", _when(row.updated_ms, lang)),
              ("expected", _when(row.expected_ms, lang))]
    rows = "".join(
        f'<div class="f" data-f="{k}"{"" if v else " hidden"}><dt>{html.escape(labels[k])}</dt>'
        f"<dd>{html.escape(str(v or ''))}</dd></div>" for k, v in fields)
    notice = doc["service_notice"] or ""
    script_data = orjson.dumps({"id": row.id, "lang": lang, "labels": labels, "refresh_s": REFRESH_S,
                                "date": t("page.date", lang, d="{d}", t="{t}")}).decode()
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(t("page.title", lang, id=row.id))}</title>
<style>
[hidden]{{display:none!important}}
body{{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f6f8;color:#1b1f24}}
main{{max-width:40rem;margin:0 auto;padding:1rem}}
h1{{font-size:1.4rem;margin:.5rem 0 1rem}}
.card{{background:#fff;border-radius:8px;padding:1rem 1.25rem;box-shadow:0 1px 3px #0002}}
.status{{display:inline-block;padding:.3rem .8rem;border-radius:999px;font-weight:600}}
.status.open{{background:#fff3cd;color:#6b4e00}} .status.closed{{background:#d1f0dc;color:#0d5a2b}}
.note{{font-size:1.1rem;margin:1rem 0}} dl{{margin:0}} .f{{display:flex;gap:1rem;padding:.4rem 0;
border-top:1px solid #e3e7eb;flex-wrap:wrap}} dt{{min-width:8rem;color:#4a5560}} dd{{margin:0;flex:1}}
.notice{{color:#4a5560}} .lang{{float:right;min-height:44px;display:inline-flex;align-items:center;
color:#0b57a4}} .live{{color:#4a5560;font-size:.9rem}}
</style>
</head>
<body>
<main>
<a class="lang" href="?lang={other}" hreflang="{other}">{html.escape(t("page.other_lang", lang))}</a>
<h1>{html.escape(t("page.title", lang, id=row.id))}</h1>
<div class="card">
<p><strong>{html.escape(labels["status"])}</strong> <span id="status"
 class="status {doc["status"]}" role="status" aria-live="polite">{html.escape(labels[doc["status"]])}</span></p>
<p class="note"><strong>{html.escape(labels["note"])}</strong><br><span id="note">{html.escape(doc["status_notes"] or "")}</span></p>
<p class="notice" id="notice"{"" if notice else " hidden"}>{html.escape(notice)}</p>
<dl>{rows}</dl>
</div>
<p class="live">{html.escape(labels["live"])}</p>
</main>
<script>
(function () {{
  var cfg = {script_data};
  var day = new Intl.DateTimeFormat("fr-FR", {{timeZone: "Europe/Paris", day: "2-digit", month: "2-digit", year: "numeric"}});
  var hour = new Intl.DateTimeFormat("fr-FR", {{timeZone: "Europe/Paris", hour: "2-digit", minute: "2-digit"}});
  var fmt = {{format: function (d) {{ return cfg.date.replace("{{d}}", day.format(d)).replace("{{t}}", hour.format(d)); }}}};
  function field(k, v) {{
    var el = document.querySelector('[data-f="' + k + '"]');
    if (!el) return;
    el.hidden = !v;
    el.querySelector("dd").textContent = v || "";
  }}
  function show(doc) {{
    var s = document.getElementById("status");
    s.className = "status " + doc.status;
    s.textContent = cfg.labels[doc.status];
    document.getElementById("note").textContent = doc.status_notes || "";
    var n = document.getElementById("notice");
    n.hidden = !doc.service_notice;
    n.textContent = doc.service_notice || "";
    field("updated", doc.updated_datetime && fmt.format(new Date(doc.updated_datetime)));
    field("expected", doc.expected_datetime && fmt.format(new Date(doc.expected_datetime)));
  }}
  var m = /token=([A-Za-z0-9_-]+)/.exec(location.hash);
  var lang = document.querySelector(".lang");
  lang.href += location.hash;
  if (m && window.EventSource) {{
    var es = new EventSource("/open311/v2/requests/" + cfg.id + "/events?lang=" + cfg.lang + "&token=" + m[1]);
    es.addEventListener("status", function (e) {{ show(JSON.parse(e.data)); }});
    return;
  }}
  setInterval(function () {{
    fetch("/open311/v2/requests/" + cfg.id + ".json?lang=" + cfg.lang)
      .then(function (r) {{ return r.ok ? r.json() : null; }})
      .then(function (d) {{ if (d && d[0]) show(d[0]); }})
      .catch(function () {{}});
  }}, cfg.refresh_s * 1000);
}})();
</script>
</body>
</html>
"""


def _coords(doc: dict[str, Any]) -> str:
    return "" if doc["lat"] is None else f"{doc['lat']:.5f}, {doc['long']:.5f}"
