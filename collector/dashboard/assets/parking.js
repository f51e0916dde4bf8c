// Control-centre page, "Stationnement" panel of the overview: each street's spaces occupied, free and unknown now,
// each zone's occupancy, and the blue-zone overstays, from /api/v1/parking/now (collector/parking/routes.py),
// refreshed every 30 s. Text only, never HTML. No vehicle is ever named: a space is occupied or not.
"use strict";

(() => {
  const REFRESH_MS = 30_000;
  const { el } = CG;
  const t = (key, vars) => CG.t(key, vars);
  const CATEGORIES = ["pay_zone", "blue_zone", "delivery_bay", "disabled_bay"];
  CG.strings({
    fr: {
      "parking.title": "Stationnement", "parking.note": "capteurs au sol, état actuel",
      "parking.overstays.one": "capteurs au sol · {n} dépassement en zone bleue",
      "parking.overstays.other": "capteurs au sol · {n} dépassements en zone bleue",
      "parking.street": "Rue", "parking.occupied": "Occupées", "parking.free": "Libres", "parking.unknown": "Inconnues",
      "parking.occupancy": "Occupation", "parking.zone": "Zone", "parking.spaces": "Places", "parking.overstays": "Dépassements",
      "parking.no_space": "aucune place équipée", "parking.csv": "occupation horaire par rue (CSV, données ouvertes)",
      "parking.silent": "capteur silencieux au-delà de sa période de vie : état inconnu, jamais compté libre",
      "parking.minutes": "{n} min",
      "parking.category.pay_zone": "payant", "parking.category.blue_zone": "zone bleue",
      "parking.category.delivery_bay": "livraison", "parking.category.disabled_bay": "PMR",
    },
    en: {
      "parking.title": "Parking", "parking.note": "in-ground sensors, current state",
      "parking.overstays.one": "in-ground sensors · {n} blue-zone overstay",
      "parking.overstays.other": "in-ground sensors · {n} blue-zone overstays",
      "parking.street": "Street", "parking.occupied": "Occupied", "parking.free": "Free", "parking.unknown": "Unknown",
      "parking.occupancy": "Occupancy", "parking.zone": "Zone", "parking.spaces": "Spaces", "parking.overstays": "Overstays",
      "parking.no_space": "no equipped space", "parking.csv": "hourly occupancy per street (CSV, open data)",
      "parking.silent": "sensor silent beyond its lifetime: state unknown, never counted free",
      "parking.minutes": "{n} min",
      "parking.category.pay_zone": "paid", "parking.category.blue_zone": "blue zone",
      "parking.category.delivery_bay": "delivery", "parking.category.disabled_bay": "disabled",
    },
  });
  const pct = (part, whole) => (whole ? `${CG.fmtNum(Math.round((100 * part) / whole))} %` : "–");

  const card = el("section", { class: "card parking-card", id: "parking", "aria-labelledby": "parking-title" });
  let now = null;

  function table(cols, rows, empty) {
    const head = el("thead", {}, el("tr", {}, cols.map(([key, num]) => el("th", { scope: "col", class: num ? "num" : null }, t(key)))));
    const body = el("tbody", {}, rows.length || !empty ? rows : el("tr", { class: "empty" }, el("td", { colspan: String(cols.length) }, empty)));
    // a narrow screen scrolls the table, not the page; the tabindex lets a keyboard scroll it
    return el("div", { class: "scroll", tabindex: "0" }, el("table", { class: "list" }, head, body));
  }

  function draw() {
    const streets = (now ? now.streets : []).map((s) => el("tr", {}, el("td", {}, s.name),
      el("td", { class: "num" }, CG.fmtNum(s.occupied)), el("td", { class: "num" }, CG.fmtNum(s.free)),
      el("td", { class: "num", title: s.unknown ? t("parking.silent") : null }, CG.fmtNum(s.unknown)),
      el("td", { class: "num" }, pct(s.occupied, s.occupied + s.free))));
    const zones = (now ? now.zones : []).map((z) => {
      const category = CATEGORIES.includes(z.category) ? t(`parking.category.${z.category}`) : z.category;
      const stay = z.max_stay_min ? `, ${t("parking.minutes", { n: z.max_stay_min })}` : "";
      return el("tr", {}, el("td", {}, `${z.name || z.zone} (${category}${stay})`), el("td", { class: "num" }, CG.fmtNum(z.spaces)),
        el("td", { class: "num" }, pct(z.occupied, z.occupied + z.free)),
        el("td", { class: "num" }, el("span", { class: `pill ${z.overstays ? "major" : "ok"}` }, CG.fmtNum(z.overstays))));
    });
    card.replaceChildren(
      el("div", { class: "card-head" }, el("h2", { id: "parking-title" }, t("parking.title")),
        el("span", { class: "note" }, now ? CG.plural("parking.overstays", now.overstays.length) : t("parking.note"))),
      table([["parking.street"], ["parking.occupied", 1], ["parking.free", 1], ["parking.unknown", 1], ["parking.occupancy", 1]],
        streets, now ? t("parking.no_space") : null),
      table([["parking.zone"], ["parking.spaces", 1], ["parking.occupancy", 1], ["parking.overstays", 1]], zones, null),
      el("p", {}, el("a", { class: "note", href: "/opendata/v1/parking/hourly.csv" }, t("parking.csv"))));
  }

  async function refresh() {
    try {
      now = await CG.api("/api/v1/parking/now");
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
