// Control-centre page, "Stationnement" panel: each street's spaces occupied, free and unknown now, each zone's
// occupancy, and the blue-zone overstays, from /api/v1/parking/now (collector/parking/routes.py), refreshed
// every 30 s. Text only, never HTML. No vehicle is ever named: a space is occupied or not.
"use strict";

(() => {
  const REFRESH_MS = 30_000;
  const CATEGORY = { pay_zone: "payant", blue_zone: "zone bleue", delivery_bay: "livraison", disabled_bay: "PMR" };
  const node = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const pct = (part, whole) => (whole ? `${Math.round((100 * part) / whole)} %` : "–");

  const card = node("section", "card parking-card");
  card.id = "parking";
  const head = node("div", "card-head");
  const note = node("span", "note", "capteurs au sol, état actuel");
  head.append(node("h2", "", "Stationnement"), note);
  const table = (labels) => {
    const t = node("table", "list");
    const tr = node("tr");
    for (const [label, cls] of labels) tr.append(node("th", cls, label));
    t.append(node("thead"), node("tbody"));
    t.tHead.append(tr);
    return t;
  };
  const streets = table([["Rue", ""], ["Occupées", "num"], ["Libres", "num"], ["Inconnues", "num"], ["Occupation", "num"]]);
  const zones = table([["Zone", ""], ["Places", "num"], ["Occupation", "num"], ["Dépassements", "num"]]);
  const csv = node("a", "note", "occupation horaire par rue (CSV, données ouvertes)");
  csv.href = "/opendata/v1/parking/hourly.csv";
  zones.style.marginTop = "14px";
  csv.style.display = "inline-block";
  csv.style.marginTop = "10px";
  const scroll = (t) => {  // narrow screens: the table scrolls, the page does not
    const box = node("div");
    box.style.overflowX = "auto";
    box.tabIndex = 0; // and a keyboard can scroll it too
    box.append(t);
    return box;
  };
  card.append(head, scroll(streets), scroll(zones), csv);
  CG.panel(card); // the overview shows it below its own cards

  function empty(body, cols, text) {
    const row = node("tr", "empty");
    const td = node("td", "", text);
    td.colSpan = cols;
    row.append(td);
    body.append(row);
  }

  function render(now) {
    const sb = streets.tBodies[0];
    const zb = zones.tBodies[0];
    sb.replaceChildren();
    zb.replaceChildren();
    if (!now.streets.length) empty(sb, 5, "aucune place équipée");
    for (const s of now.streets) {
      const row = node("tr");
      const unknown = node("td", "num", String(s.unknown));
      if (s.unknown) unknown.title = "capteur silencieux au-delà de sa période de vie : état inconnu, jamais compté libre";
      row.append(node("td", "", s.name), node("td", "num", String(s.occupied)), node("td", "num", String(s.free)),
        unknown, node("td", "num", pct(s.occupied, s.occupied + s.free)));
      sb.append(row);
    }
    for (const z of now.zones) {
      const row = node("tr");
      const label = `${z.name || z.zone} (${CATEGORY[z.category] || z.category}${z.max_stay_min ? `, ${z.max_stay_min} min` : ""})`;
      const count = z.overstays;
      const cell = node("td", "num");
      cell.append(node("span", `pill ${count ? "major" : "ok"}`, String(count)));
      row.append(node("td", "", label), node("td", "num", String(z.spaces)),
        node("td", "num", pct(z.occupied, z.occupied + z.free)), cell);
      zb.append(row);
    }
    note.textContent = `capteurs au sol · ${now.overstays.length} dépassement${now.overstays.length > 1 ? "s" : ""} en zone bleue`;
  }

  async function refresh() {
    try {
      const resp = await fetch("/api/v1/parking/now", { headers: { Accept: "application/json" } });
      if (resp.ok) render(await resp.json());
    } catch (_) {
      // the page's live indicator already says when the collector is unreachable
    }
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
