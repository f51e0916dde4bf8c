// Control-centre page, "Circulation" panel: each junction's last hour of counts and its faulty detectors,
// from /api/v1/traffic/junctions (collector/traffic/routes.py), refreshed every 30 s. Text only, never HTML.
"use strict";

(() => {
  const REFRESH_MS = 30_000;
  const node = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const hour = (iso) => new Date(iso).toLocaleTimeString("fr-FR", { timeZone: "Europe/Paris", hour: "2-digit", minute: "2-digit" });

  const card = node("section", "card traffic-card");
  card.id = "traffic";
  const head = node("div", "card-head");
  head.append(node("h2", "", "Circulation"));
  const table = node("table", "list");
  const tr = node("tr");
  for (const [label, cls] of [["Carrefour", ""], ["Période", ""], ["Véhicules", "num"], ["Détecteurs en défaut", ""]]) {
    const th = node("th", cls, label);
    if (cls === "num") th.style.textAlign = "right";
    tr.append(th);
  }
  table.append(node("thead"), node("tbody"));
  table.tHead.append(tr);
  const scroller = node("div");
  scroller.style.overflowX = "auto"; // a narrow screen scrolls the table, not the page
  scroller.tabIndex = 0; // and a keyboard can scroll it too
  scroller.append(table);
  const note = node("p", "note", "Véhicules comptés sur la dernière heure reçue de chaque carrefour ; * : comptage incomplet.");
  card.style.gridColumn = "1 / -1"; // the whole width, as the other panels of one table
  card.append(head, scroller, note);
  CG.panel(card); // the overview shows it below its own cards

  function render(junctions) {
    const body = table.tBodies[0];
    body.replaceChildren();
    if (!junctions.length) {
      const row = node("tr", "empty");
      const td = node("td", "", "aucun comptage reçu");
      td.colSpan = 4;
      row.append(td);
      body.append(row);
      return;
    }
    for (const j of junctions) {
      const row = node("tr");
      const faulty = node("td");
      if (j.flagged) {
        faulty.append(node("span", "pill major", j.faulty_detectors.join(", ")));
        faulty.title = "comptage incomplet : au moins un détecteur en défaut";
      } else {
        faulty.append(node("span", "pill ok", "aucun"));
      }
      row.append(node("td", "", j.junction), node("td", "", `${hour(j.from)}–${hour(j.to)}`),
        node("td", "num", `${j.vehicles.toLocaleString("fr-FR")}${j.flagged ? " *" : ""}`), faulty);
      body.append(row);
    }
  }

  async function refresh() {
    try {
      const resp = await fetch("/api/v1/traffic/junctions", { headers: { Accept: "application/json" } });
      if (resp.ok) render(await resp.json());
    } catch (_) {
      // the page's live indicator already says when the collector is unreachable
    }
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
