// Control-centre page, "Circulation" panel of the overview: each junction's last hour of counts and its faulty
// detectors, from /api/v1/traffic/junctions (collector/traffic/routes.py), refreshed every 30 s. Text only, never HTML.
"use strict";

(() => {
  const REFRESH_MS = 30_000;
  const { el } = CG;
  const t = (key, vars) => CG.t(key, vars);
  CG.strings({
    fr: {
      "traffic.title": "Circulation", "traffic.junction": "Carrefour", "traffic.period": "Période",
      "traffic.vehicles": "Véhicules", "traffic.faulty": "Détecteurs en défaut", "traffic.none": "aucun",
      "traffic.empty": "aucun comptage reçu", "traffic.incomplete": "comptage incomplet : au moins un détecteur en défaut",
      "traffic.note": "Véhicules comptés sur la dernière heure reçue de chaque carrefour ; * : comptage incomplet.",
    },
    en: {
      "traffic.title": "Traffic", "traffic.junction": "Junction", "traffic.period": "Period",
      "traffic.vehicles": "Vehicles", "traffic.faulty": "Faulty detectors", "traffic.none": "none",
      "traffic.empty": "no count received", "traffic.incomplete": "incomplete count: at least one detector is faulty",
      "traffic.note": "Vehicles counted over each junction's last hour received; *: incomplete count.",
    },
  });

  const card = el("section", { class: "card traffic-card", id: "traffic", "aria-labelledby": "traffic-title" });
  let junctions = null;

  function draw() {
    const body = el("tbody");
    if (junctions && !junctions.length) body.append(el("tr", { class: "empty" }, el("td", { colspan: "4" }, t("traffic.empty"))));
    for (const j of junctions || []) {
      const faulty = j.flagged
        ? el("td", { title: t("traffic.incomplete") }, el("span", { class: "pill major" }, j.faulty_detectors.join(", ")))
        : el("td", {}, el("span", { class: "pill ok" }, t("traffic.none")));
      body.append(el("tr", {}, el("td", {}, j.junction), el("td", {}, `${CG.fmtTime(j.from, "time")}–${CG.fmtTime(j.to, "time")}`),
        el("td", { class: "num" }, `${CG.fmtNum(j.vehicles)}${j.flagged ? " *" : ""}`), faulty));
    }
    const head = el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("traffic.junction")), el("th", { scope: "col" }, t("traffic.period")),
      el("th", { scope: "col", class: "num" }, t("traffic.vehicles")), el("th", { scope: "col" }, t("traffic.faulty"))));
    // a narrow screen scrolls the table, not the page; the tabindex lets a keyboard scroll it
    card.replaceChildren(el("div", { class: "card-head" }, el("h2", { id: "traffic-title" }, t("traffic.title"))),
      el("div", { class: "scroll", tabindex: "0" }, el("table", { class: "list" }, head, body)), el("p", { class: "note" }, t("traffic.note")));
  }

  async function refresh() {
    try {
      junctions = await CG.api("/api/v1/traffic/junctions");
      draw();
    } catch (_) {
      // the page's live indicator already says when the collector is unreachable
    }
  }
  draw();
  CG.onLang(draw);
  CG.panel(card); // the overview shows it below its own cards
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
