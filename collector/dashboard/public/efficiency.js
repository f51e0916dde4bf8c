// The public efficiency page (/efficiency/): per commune and month, the lighting's energy against the
// all-night baseline, euros and CO2 at the factors the data states, lamp availability, repairs and
// residents' reports, from /opendata/v1/efficiency.json (collector/efficiency.py). No login, so it
// cannot load the control centre's shell: its own small i18n (fr by default, en), the same choice key
// ("cg.lang") as the control centre. Text only, never HTML from the data. Times: Europe/Paris months.
"use strict";
(function () {
  const STRINGS = {
    fr: {
      skip: "Aller au contenu",
      title: "Efficacité de l'éclairage public",
      lede: "Chaque mois, par commune : l'énergie consommée par l'éclairage public comparée à un éclairage " +
        "toute la nuit à pleine puissance, la disponibilité des lampes, les délais de réparation et les " +
        "signalements des habitants. Données ouvertes, mises à jour en continu.",
      commune: "Commune", month: "Mois", all: "Toute la métropole", loading: "Chargement…",
      error: "Les données n'ont pas pu être chargées ({detail}).", partial: "{month} (en cours)",
      "kpi.title": "{place} — {month}",
      "kpi.energy": "Énergie consommée", "kpi.saved": "Économie par rapport à la référence",
      "kpi.cost": "Coût de l'énergie", "kpi.co2": "Émissions", "kpi.availability": "Disponibilité des lampes",
      "kpi.repair": "Délai médian de réparation", "kpi.reports": "Signalements reçus",
      "kpi.resolution": "Délai médian de résolution",
      "kpi.savedOf": "{saved} kWh de moins que {baseline} kWh", "kpi.savedEur": "{eur} € économisés",
      "kpi.savedCo2": "{kg} kg CO₂e évités", "kpi.nights": "{lit} nuits-lampes sur {total}",
      "kpi.repairs": "{n} réparation(s), {open} panne(s) en cours", "kpi.resolved": "{n} résolu(s) ce mois",
      none: "—",
      "chart.title": "Énergie par mois et référence toute la nuit",
      "chart.energy": "Énergie consommée (kWh)", "chart.baseline": "Toute la nuit à pleine puissance (kWh)",
      "chart.text": "Graphique : {n} mois ; énergie consommée de {min} à {max} kWh par mois.",
      "table.title": "Détail par mois",
      "col.month": "Mois", "col.energy": "Énergie (kWh)", "col.baseline": "Référence (kWh)",
      "col.saved": "Économie (%)", "col.eur": "Coût (€)", "col.co2": "CO₂ (kg)",
      "col.availability": "Disponibilité (%)", "col.repair": "Réparation médiane (h)",
      "col.reports": "Signalements", "col.resolution": "Résolution médiane (h)",
      "method.title": "Méthode et facteurs",
      "method.baseline": "Référence toute la nuit",
      "method.baselineText": "Toutes les lampes connues à pleine puissance du crépuscule civil à l'aube civile " +
        "(soleil à 6° sous l'horizon), au centre de la commune, les jours où la commune a transmis des " +
        "mesures (un jour sans mesure n'est pas une économie). La pleine puissance d'une lampe est la plus " +
        "forte puissance × 100 / niveau qu'elle a mesurée à un niveau d'au moins 50 % dans les 3 jours " +
        "précédant la fin de la période ; une lampe jamais vue ainsi compte pour la médiane des autres.",
      "method.availability": "Disponibilité",
      "method.availabilityText": "Part des nuits-lampes éclairées comme prévu. Une nuit-lampe est une lampe " +
        "connue et une nuit dont le soir tombe dans le mois, un jour où la commune a transmis des mesures ; elle est éclairée comme prévu sauf si une panne " +
        "de lampe (lamp_failure) était ouverte à un moment quelconque entre le crépuscule et l'aube. Une nuit " +
        "sans mesure (armoire hors ligne) n'est pas comptée contre la lampe.",
      "method.repair": "Délai de réparation",
      "method.repairText": "Médiane du temps entre la panne d'une lampe et son rétablissement " +
        "(lamp_restored), pour les réparations terminées dans le mois.",
      "method.reports": "Signalements",
      "method.reportsText": "Signalements des habitants (Open311) reçus dans le mois, tous services ; délai " +
        "de résolution : médiane du temps jusqu'au premier état « résolu », pour ceux résolus dans le mois.",
      "method.eur": "Prix de l'électricité", "method.co2": "Facteur d'émission",
      "method.factor": "{value} — {source}",
      "download.title": "Télécharger les données",
      "download.excel": "CSV pour tableur français (point-virgule, virgule décimale, UTF-8 avec BOM)",
      "download.csv": "CSV standard (virgule, UTF-8)", "download.json": "JSON",
      licence: "Données publiées sous {licence}. Calculées le {when}.",
    },
    en: {
      skip: "Skip to content",
      title: "Public lighting efficiency",
      lede: "Each month, per commune: the energy public lighting used against lighting all night at full " +
        "power, lamp availability, repair times and residents' reports. Open data, updated continuously.",
      commune: "Commune", month: "Month", all: "Whole metropolis", loading: "Loading…",
      error: "The data could not be loaded ({detail}).", partial: "{month} (in progress)",
      "kpi.title": "{place} — {month}",
      "kpi.energy": "Energy used", "kpi.saved": "Saved against the baseline", "kpi.cost": "Energy cost",
      "kpi.co2": "Emissions", "kpi.availability": "Lamp availability", "kpi.repair": "Median time to repair",
      "kpi.reports": "Reports received", "kpi.resolution": "Median time to resolution",
      "kpi.savedOf": "{saved} kWh less than {baseline} kWh", "kpi.savedEur": "{eur} € saved",
      "kpi.savedCo2": "{kg} kg CO₂e avoided", "kpi.nights": "{lit} of {total} lamp-nights",
      "kpi.repairs": "{n} repair(s), {open} fault(s) open", "kpi.resolved": "{n} resolved this month",
      none: "—",
      "chart.title": "Energy per month and the all-night baseline",
      "chart.energy": "Energy used (kWh)", "chart.baseline": "All night at full power (kWh)",
      "chart.text": "Chart: {n} months; energy used from {min} to {max} kWh a month.",
      "table.title": "Month by month",
      "col.month": "Month", "col.energy": "Energy (kWh)", "col.baseline": "Baseline (kWh)",
      "col.saved": "Saved (%)", "col.eur": "Cost (€)", "col.co2": "CO₂ (kg)",
      "col.availability": "Availability (%)", "col.repair": "Median repair (h)",
      "col.reports": "Reports", "col.resolution": "Median resolution (h)",
      "method.title": "Method and factors",
      "method.baseline": "All-night baseline",
      "method.baselineText": "Every known lamp at full power from civil dusk to civil dawn (sun 6° below " +
        "the horizon), at the commune's centre, on the days the commune sent readings (a day without " +
        "readings is no saving). A lamp's full power is the highest power × 100 / level it " +
        "measured at a level of 50 % or more in the 3 days before the period's end; a lamp never seen so " +
        "counts as the median of the others.",
      "method.availability": "Availability",
      "method.availabilityText": "The share of lamp-nights lit as programmed. A lamp-night is a known lamp " +
        "and a night whose evening falls in the month, on a day the commune sent readings; it was lit as programmed unless a lamp failure " +
        "(lamp_failure) was open at any moment between dusk and dawn. A night without readings (a cabinet " +
        "offline) is not held against the lamp.",
      "method.repair": "Time to repair",
      "method.repairText": "Median time from a lamp's failure to its restoration (lamp_restored), over the " +
        "repairs finished in the month.",
      "method.reports": "Reports",
      "method.reportsText": "Residents' reports (Open311) received in the month, every service; time to " +
        "resolution: median time to the first 'resolved' state, over those resolved in the month.",
      "method.eur": "Electricity price", "method.co2": "Emission factor",
      "method.factor": "{value} — {source}",
      "download.title": "Download the data",
      "download.excel": "CSV for French spreadsheets (semicolon, decimal comma, UTF-8 with BOM)",
      "download.csv": "Standard CSV (comma, UTF-8)", "download.json": "JSON",
      licence: "Data published under {licence}. Computed on {when}.",
    },
  };
  const ZONE = "Europe/Paris";
  const ALL = "";
  const state = { lang: pickLang(), doc: null, commune: ALL, month: null, plot: null };

  function pickLang() {
    try {
      const saved = localStorage.getItem("cg.lang");
      if (saved === "fr" || saved === "en") return saved;
    } catch (_) { /* storage refused: the browser's language */ }
    return (navigator.language || "fr").toLowerCase().startsWith("en") ? "en" : "fr";
  }

  function t(key, vars) {
    const text = STRINGS[state.lang][key] ?? STRINGS.fr[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => (vars && name in vars ? String(vars[name]) : ""));
  }

  function locale() { return state.lang === "fr" ? "fr-FR" : "en-GB"; }

  function num(value, digits) {
    if (value === null || value === undefined) return t("none");
    return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits ?? 1,
                                             minimumFractionDigits: 0 }).format(value);
  }

  /** A quantity (kWh, €, kg) with the decimals that say something: 0,12 — 8,4 — 1 234 */
  function qty(value) {
    if (value === null || value === undefined) return t("none");
    const size = Math.abs(value);
    return num(value, size < 10 ? 2 : size < 100 ? 1 : 0);
  }

  function monthName(month) {  // "2026-11" -> "novembre 2026"
    const [y, m] = month.split("-").map(Number);
    return new Intl.DateTimeFormat(locale(), { month: "long", year: "numeric", timeZone: "UTC" })
      .format(Date.UTC(y, m - 1, 15));
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // -- data ---------------------------------------------------------------------------------------

  function rowsOf(commune) {
    const doc = state.doc;
    if (!doc) return [];
    if (commune === ALL) return doc.total;
    return doc.rows.filter((r) => r.commune_insee === commune);
  }

  function placeName() {
    if (state.commune === ALL) return t("all");
    const row = state.doc.rows.find((r) => r.commune_insee === state.commune);
    return row ? row.commune_name : state.commune;
  }

  async function load() {
    const status = document.getElementById("status");
    status.textContent = t("loading");
    try {
      const resp = await fetch("/opendata/v1/efficiency.json", { headers: { Accept: "application/json" } });
      const doc = await resp.json();
      if (!resp.ok) throw new Error(doc.detail || resp.status);
      state.doc = doc;
      const months = doc.total.map((r) => r.month);
      const complete = doc.total.filter((r) => !r.partial).map((r) => r.month);
      state.month = complete.length ? complete[complete.length - 1] : months[months.length - 1];
      status.textContent = "";
      render();
    } catch (err) {
      status.textContent = t("error", { detail: err.message || String(err) });
    }
  }

  // -- rendering ----------------------------------------------------------------------------------

  function renderStatic() {
    document.documentElement.lang = state.lang;
    document.title = t("title");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const button of document.querySelectorAll("[data-lang]")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
    }
  }

  function renderSelects() {
    const doc = state.doc;
    const communes = document.getElementById("commune");
    communes.replaceChildren(new Option(t("all"), ALL));
    const seen = new Map();
    for (const r of doc.rows) seen.set(r.commune_insee, r.commune_name);
    const sorted = [...seen].sort((a, b) => a[1].localeCompare(b[1], locale()));
    for (const [insee, name] of sorted) communes.append(new Option(name, insee));
    communes.value = state.commune;
    const months = document.getElementById("month");
    months.replaceChildren();
    for (const r of [...doc.total].reverse()) {
      months.append(new Option(r.partial ? t("partial", { month: monthName(r.month) }) : monthName(r.month),
                               r.month));
    }
    months.value = state.month;
  }

  function kpi(label, value, note) {
    const card = el("div", "kpi");
    card.append(el("p", "kpi-label", label), el("p", "kpi-value", value));
    if (note) card.append(el("p", "kpi-note", note));
    return card;
  }

  function renderKpis() {
    const row = rowsOf(state.commune).find((r) => r.month === state.month);
    document.getElementById("kpi-title").textContent = t("kpi.title", { place: placeName(),
                                                                          month: monthName(state.month) });
    const box = document.getElementById("kpis");
    if (!row) { box.replaceChildren(); return; }
    box.replaceChildren(
      kpi(t("kpi.energy"), `${qty(row.energy_kwh)} kWh`),
      kpi(t("kpi.saved"), row.saved_pct === null ? t("none") : `${num(row.saved_pct, 1)} %`,
          t("kpi.savedOf", { saved: qty(row.saved_kwh), baseline: qty(row.baseline_kwh) })),
      kpi(t("kpi.cost"), `${qty(row.energy_eur)} €`, t("kpi.savedEur", { eur: qty(row.saved_eur) })),
      kpi(t("kpi.co2"), `${qty(row.energy_co2_kg)} kg CO₂e`, t("kpi.savedCo2", { kg: qty(row.saved_co2_kg) })),
      kpi(t("kpi.availability"), row.availability_pct === null ? t("none") : `${num(row.availability_pct, 2)} %`,
          t("kpi.nights", { lit: num(row.lamp_nights_lit, 0), total: num(row.lamp_nights, 0) })),
      kpi(t("kpi.repair"), row.repair_median_h === null ? t("none") : `${num(row.repair_median_h, 1)} h`,
          t("kpi.repairs", { n: row.repairs, open: row.faults_open })),
      kpi(t("kpi.reports"), num(row.reports_received, 0)),
      kpi(t("kpi.resolution"), row.report_resolution_median_h === null ? t("none")
        : `${num(row.report_resolution_median_h, 1)} h`, t("kpi.resolved", { n: row.reports_resolved })),
    );
  }

  const COLUMNS = [
    ["col.month", (r) => monthName(r.month)], ["col.energy", (r) => qty(r.energy_kwh)],
    ["col.baseline", (r) => qty(r.baseline_kwh)], ["col.saved", (r) => num(r.saved_pct, 1)],
    ["col.eur", (r) => num(r.energy_eur, 0)], ["col.co2", (r) => num(r.energy_co2_kg, 0)],
    ["col.availability", (r) => num(r.availability_pct, 2)], ["col.repair", (r) => num(r.repair_median_h, 1)],
    ["col.reports", (r) => num(r.reports_received, 0)], ["col.resolution", (r) => num(r.report_resolution_median_h, 1)],
  ];

  function renderTable() {
    const table = document.getElementById("table");
    const head = el("thead");
    const tr = el("tr");
    for (const [key] of COLUMNS) {
      const th = el("th", "", t(key));
      th.scope = "col";
      tr.append(th);
    }
    head.append(tr);
    const body = el("tbody");
    for (const r of [...rowsOf(state.commune)].reverse()) {
      const row = el("tr");
      COLUMNS.forEach(([key, cell], i) => {
        const td = el(i === 0 ? "th" : "td", "", cell(r));
        if (i === 0) td.scope = "row";
        td.dataset.label = t(key);
        row.append(td);
      });
      if (r.month === state.month) row.className = "current";
      body.append(row);
    }
    table.replaceChildren(head, body);
  }

  function renderChart() {
    const box = document.getElementById("chart");
    const rows = rowsOf(state.commune);
    const xs = rows.map((r) => { const [y, m] = r.month.split("-").map(Number); return Date.UTC(y, m - 1, 1) / 1000; });
    const data = [xs, rows.map((r) => r.energy_kwh), rows.map((r) => r.baseline_kwh)];
    if (state.plot) { state.plot.destroy(); state.plot = null; }
    box.replaceChildren();
    const energies = rows.map((r) => r.energy_kwh);
    document.getElementById("chart-text").textContent = t("chart.text", {
      n: rows.length, min: num(Math.min(...energies), 0), max: num(Math.max(...energies), 0) });
    if (typeof uPlot === "undefined" || !rows.length) return;
    const width = Math.max(280, box.clientWidth);
    const short = new Intl.DateTimeFormat(locale(), { month: "short", year: "2-digit", timeZone: "UTC" });
    const opts = {
      width, height: width < 500 ? 220 : 300,
      scales: { x: { time: false, range: (u, lo, hi) => [lo - 15 * 86400, hi + 15 * 86400] } },
      axes: [
        // a label a month, or every other (third...) month when they would not fit side by side
        { values: (u, ticks) => ticks.map((v) => short.format(v * 1000)), space: 30,
          splits: () => xs.filter((_, i) => i % Math.max(1, Math.ceil((xs.length * 62) / (width - 90))) === 0) },
        { label: "kWh", size: 70, values: (u, ticks) => ticks.map((v) => num(v, 0)) },
      ],
      series: [
        { label: t("col.month"), value: (u, v) => (v === null ? "" : monthName(new Date(v * 1000).toISOString().slice(0, 7))) },
        { label: t("chart.energy"), stroke: "#1f6f43", fill: "rgba(31, 111, 67, 0.55)", width: 1,
          paths: uPlot.paths.bars({ size: [0.6, 60] }), points: { show: false },
          value: (u, v) => (v === null ? "" : `${num(v, 0)} kWh`) },
        { label: t("chart.baseline"), stroke: "#8a4b08", width: 2, dash: [6, 4],
          value: (u, v) => (v === null ? "" : `${num(v, 0)} kWh`) },
      ],
    };
    state.plot = new uPlot(opts, data, box);
  }

  function renderMethod() {
    const doc = state.doc;
    const list = document.getElementById("method");
    list.replaceChildren();
    const add = (term, text) => list.append(el("dt", "", term), el("dd", "", text));
    const f = doc.factors;
    add(t("method.eur"), t("method.factor", { value: `${num(f.eur_per_kwh, 3)} €/kWh`, source: f.eur_source }));
    add(t("method.co2"), t("method.factor", { value: `${num(f.co2_kg_per_kwh, 3)} kg CO₂e/kWh`,
                                             source: f.co2_source }));
    for (const key of ["baseline", "availability", "repair", "reports"]) {
      add(t(`method.${key}`), t(`method.${key}Text`));
    }
    const when = new Intl.DateTimeFormat(locale(), { dateStyle: "long", timeStyle: "short", timeZone: ZONE })
      .format(doc.generated_ms);
    document.getElementById("licence").textContent = t("licence", { licence: doc.license, when });
  }

  function renderDownloads() {
    const query = state.commune === ALL ? "" : `commune=${encodeURIComponent(state.commune)}`;
    const link = (id, base, extra) => {
      const parts = [extra, query].filter(Boolean).join("&");
      document.getElementById(id).href = parts ? `${base}?${parts}` : base;
    };
    link("dl-excel", "/opendata/v1/efficiency.csv", "format=excel-fr");
    link("dl-csv", "/opendata/v1/efficiency.csv", "");
    link("dl-json", "/opendata/v1/efficiency.json", "");
  }

  function render() {
    renderStatic();
    if (!state.doc) return;
    renderSelects();
    renderKpis();
    renderChart();
    renderTable();
    renderMethod();
    renderDownloads();
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const button of document.querySelectorAll("[data-lang]")) {
      button.addEventListener("click", () => {
        state.lang = button.dataset.lang;
        try { localStorage.setItem("cg.lang", state.lang); } catch (_) { /* not kept: fine */ }
        render();
      });
    }
    document.getElementById("commune").addEventListener("change", (e) => { state.commune = e.target.value; render(); });
    document.getElementById("month").addEventListener("change", (e) => { state.month = e.target.value; render(); });
    let width = 0;
    new ResizeObserver(() => {
      const now = document.getElementById("chart").clientWidth;
      if (state.doc && Math.abs(now - width) > 8) { width = now; renderChart(); }
    }).observe(document.getElementById("chart"));
    renderStatic();
    load();
  });
})();
