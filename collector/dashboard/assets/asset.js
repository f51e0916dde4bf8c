// Asset pages of the control centre (assets/README.md): a lamp, a cabinet, a junction, a commune's charts.
//   #/lamp/<gateway>/<device>      commanded vs actual level, power and voltage, energy and burn hours per
//                                  day, faults and overrides, its group's program
//   #/cabinet/<gateway>            its lamps (each a link to its page), energy per day, supply voltage,
//                                  alarms, lighting groups
//   #/junction/<id> or /<gw>/<dev> current mode and plan, the plans it ran, changes, commands, events
//   #/commune/<insee>/charts       energy per day against the previous period and the all-night baseline
// Data from /control/api/... (collector/dashboard/assets_api.py); charts with the vendored uPlot, times in
// Europe/Paris (uPlot.tzDate), sized by their container and redrawn when it resizes. Text only, never HTML.
"use strict";

(() => {
  const { el } = CG;
  const H = 3_600_000;
  const RANGES = [["24h", 24 * H], ["7d", 7 * 24 * H], ["30d", 30 * 24 * H]];
  const COLORS = { commanded: "#1d4fb0", actual: "#e8a317", power: "#2e9e5b", voltage: "#7a5cc7",
                   energy: "#2f6fdf", burn: "#b45309", previous: "#8a94a6", baseline: "#b42318" };

  CG.strings({
    fr: {
      "asset.lamp": "Lampe {device}", "asset.cabinet": "Armoire {name}", "asset.junction": "Carrefour {name}",
      "asset.commune": "Énergie de {name}", "asset.loading": "Chargement…",
      "asset.range": "Période", "asset.range.24h": "24 h", "asset.range.7d": "7 jours", "asset.range.30d": "30 jours",
      "asset.crumbs": "Fil d'Ariane", "asset.overview": "Vue d'ensemble",
      "asset.levels": "Niveau commandé et niveau réel", "asset.commanded": "Commandé (%)", "asset.actual": "Réel (%)",
      "asset.power": "Puissance et tension d'alimentation", "asset.power_w": "Puissance (W)",
      "asset.voltage_v": "Tension (V)", "asset.voltage_min": "Tension min (V)", "asset.voltage_max": "Tension max (V)",
      "asset.days": "Énergie et heures de fonctionnement par jour", "asset.energy_kwh": "Énergie (kWh)",
      "asset.burn_h": "Fonctionnement (h)", "asset.bucket": "Moyennes par tranche de {size}",
      "asset.raw": "Chaque mesure reçue",
      "asset.nodata": "Aucune mesure sur cette période.",
      "asset.state": "État", "asset.level": "Niveau", "asset.powerNow": "Puissance",
      "asset.voltageNow": "Tension", "asset.lastReading": "Dernière mesure", "asset.burnTotal": "Heures de fonctionnement",
      "asset.fault": "En panne depuis {since}", "asset.noFault": "Aucune panne ouverte",
      "asset.program": "Programme", "asset.group": "Groupe {group}", "asset.noGroup": "Groupe inconnu du collecteur",
      "asset.programName": "Programme en cours", "asset.mode": "Mode de l'horloge",
      "asset.lastSwitch": "Dernière commutation", "asset.nextSwitch": "Prochaine commutation",
      "asset.nextSwitchNote": "Pas encore connue : la passerelle l'envoie à chaque commutation (calendrier et soleil).",
      "asset.pushed": "Jeu de programmes poussé par {who} le {when}",
      "asset.pushedNone": "Aucun programme poussé depuis le centre : la passerelle suit sa configuration.",
      "asset.programs": "Programmes : {names}", "asset.calendars": "Calendriers : {names}",
      "asset.history": "Pannes, dérogations et événements", "asset.when": "Date", "asset.event": "Événement",
      "asset.severity": "Gravité", "asset.detail": "Détail", "asset.noEvents": "Aucun événement sur cette période.",
      "asset.lamps": "Lampes ({n})", "asset.device": "Lampe", "asset.on": "allumée", "asset.off": "éteinte",
      "asset.unknown": "inconnu", "asset.failed": "en panne",
      "asset.alarms": "Alarmes", "asset.noAlarms": "Aucune alarme.", "asset.alarmDevices": "{n} équipements", "asset.status": "Statut",
      "asset.groups": "Groupes d'éclairage", "asset.noGroups": "Aucun groupe connu.",
      "asset.supply": "Tension d'alimentation (moyenne, min, max des appareils)",
      "asset.cabinetDays": "Énergie par jour de l'armoire",
      "asset.junctionNow": "Maintenant", "asset.changeMode": "Orange clignotant, éteint ou normal…", "asset.signalMode": "Mode", "asset.plan": "Plan", "asset.stage": "Phase", "asset.central": "Commande centrale",
      "asset.yes": "oui", "asset.no": "non",
      "asset.planTable": "Plans exécutés sur la période", "asset.duration": "Durée", "asset.entered": "Entrées",
      "asset.changes": "Changements de mode et de plan", "asset.commands": "Commandes",
      "asset.noCommands": "Aucune commande sur cette période.", "asset.by": "Par",
      "asset.communeChart": "Énergie par jour", "asset.thisPeriod": "Période ({from} – {to}) (kWh)",
      "asset.previous": "Période précédente (kWh)", "asset.baseline": "Toute la nuit à pleine puissance (kWh)",
      "asset.total": "Total", "asset.vsPrevious": "Par rapport à la période précédente",
      "asset.vsBaseline": "Économie par rapport à un éclairage toute la nuit",
      "asset.installed": "{lamps} lampes, {watts} W à pleine puissance ({known} mesurées)",
      "asset.days30": "30 jours", "asset.days90": "90 jours", "asset.days365": "365 jours",
      "asset.back": "Retour à la commune", "asset.communeLink": "Énergie de {name} par jour", "asset.chartsLink": "Courbes d'énergie",
      "asset.mode.normal": "normal", "asset.mode.yellow_flash": "orange clignotant", "asset.mode.dark": "éteint",
      "asset.mode.startup": "démarrage", "asset.mode.failure": "défaut",
    },
    en: {
      "asset.lamp": "Lamp {device}", "asset.cabinet": "Cabinet {name}", "asset.junction": "Junction {name}",
      "asset.commune": "Energy of {name}", "asset.loading": "Loading…",
      "asset.range": "Period", "asset.range.24h": "24 h", "asset.range.7d": "7 days", "asset.range.30d": "30 days",
      "asset.crumbs": "Breadcrumb", "asset.overview": "Overview",
      "asset.levels": "Commanded and actual level", "asset.commanded": "Commanded (%)", "asset.actual": "Actual (%)",
      "asset.power": "Power and supply voltage", "asset.power_w": "Power (W)",
      "asset.voltage_v": "Voltage (V)", "asset.voltage_min": "Min voltage (V)", "asset.voltage_max": "Max voltage (V)",
      "asset.days": "Energy and burn hours per day", "asset.energy_kwh": "Energy (kWh)",
      "asset.burn_h": "Burn time (h)", "asset.bucket": "Means per {size} bucket", "asset.raw": "Every reading received",
      "asset.nodata": "No reading in this period.",
      "asset.state": "State", "asset.level": "Level", "asset.powerNow": "Power",
      "asset.voltageNow": "Voltage", "asset.lastReading": "Last reading", "asset.burnTotal": "Burn hours",
      "asset.fault": "Failed since {since}", "asset.noFault": "No open fault",
      "asset.program": "Program", "asset.group": "Group {group}", "asset.noGroup": "Group unknown to the collector",
      "asset.programName": "Program running", "asset.mode": "Clock mode",
      "asset.lastSwitch": "Last switch", "asset.nextSwitch": "Next switch",
      "asset.nextSwitchNote": "Not known yet: the gateway sends it with each switch (calendar and sun).",
      "asset.pushed": "Program set pushed by {who} on {when}",
      "asset.pushedNone": "No program pushed from the centre: the gateway runs its configuration.",
      "asset.programs": "Programs: {names}", "asset.calendars": "Calendars: {names}",
      "asset.history": "Faults, overrides and events", "asset.when": "When", "asset.event": "Event",
      "asset.severity": "Severity", "asset.detail": "Detail", "asset.noEvents": "No event in this period.",
      "asset.lamps": "Lamps ({n})", "asset.device": "Lamp", "asset.on": "on", "asset.off": "off",
      "asset.unknown": "unknown", "asset.failed": "failed",
      "asset.alarms": "Alarms", "asset.noAlarms": "No alarm.", "asset.alarmDevices": "{n} devices", "asset.status": "Status",
      "asset.groups": "Lighting groups", "asset.noGroups": "No group known.",
      "asset.supply": "Supply voltage (mean, min, max of the devices)",
      "asset.cabinetDays": "The cabinet's energy per day",
      "asset.junctionNow": "Now", "asset.changeMode": "Flashing amber, dark or normal…", "asset.signalMode": "Mode", "asset.plan": "Plan", "asset.stage": "Stage", "asset.central": "Central control",
      "asset.yes": "yes", "asset.no": "no",
      "asset.planTable": "Plans run in the period", "asset.duration": "Duration", "asset.entered": "Entered",
      "asset.changes": "Mode and plan changes", "asset.commands": "Commands",
      "asset.noCommands": "No command in this period.", "asset.by": "By",
      "asset.communeChart": "Energy per day", "asset.thisPeriod": "Period ({from} – {to}) (kWh)",
      "asset.previous": "Previous period (kWh)", "asset.baseline": "All night at full power (kWh)",
      "asset.total": "Total", "asset.vsPrevious": "Against the previous period",
      "asset.vsBaseline": "Saved against lighting all night",
      "asset.installed": "{lamps} lamps, {watts} W at full power ({known} measured)",
      "asset.days30": "30 days", "asset.days90": "90 days", "asset.days365": "365 days",
      "asset.back": "Back to the commune", "asset.communeLink": "{name}'s energy per day", "asset.chartsLink": "Energy charts",
      "asset.mode.normal": "normal", "asset.mode.yellow_flash": "flashing amber", "asset.mode.dark": "dark",
      "asset.mode.startup": "starting", "asset.mode.failure": "failure",
    },
  });

  // -- small helpers ------------------------------------------------------------------------------

  const enc = encodeURIComponent;
  const num = (v, d) => CG.fmtNum(v, d);
  const yesNo = (v) => (v === true ? CG.t("asset.yes") : v === false ? CG.t("asset.no") : CG.MISSING);
  const modeName = (m) => (m ? CG.t(`asset.mode.${m}`) : CG.MISSING);

  // an alarm's kind and state in words where alarms.js has them (its strings), else the code itself
  function known(key) {
    return CG.hasString(key);
  }
  function alarmKind(kind) {
    return known(`alarms.kind.${kind}`) ? CG.t(`alarms.kind.${kind}`) : kind;
  }

  function duration(ms) {
    const h = Math.floor(ms / H);
    const m = Math.round((ms % H) / 60000);
    return h ? `${h} h ${String(m).padStart(2, "0")}` : `${m} min`;
  }

  function detailText(detail) {
    return Object.entries(detail || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
      .join(", ");
  }

  function card(title, ...children) {
    return el("section", { class: "card asset-card" }, el("h2", {}, title), ...children);
  }

  function table(headers, rows, emptyText, numeric) {
    const head = el("tr", {}, headers.map((h, i) => el("th", { scope: "col", class: numeric && numeric[i] ? "num" : null }, h)));
    const body = rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: headers.length }, emptyText))];
    return el("div", { class: "asset-table" }, el("table", { class: "list" }, el("thead", {}, head), el("tbody", {}, body)));
  }

  function crumbs(parts) {
    const items = parts.map(([label, href]) => el("li", {}, href ? el("a", { href }, label) : el("span", { "aria-current": "page" }, label)));
    return el("nav", { class: "asset-crumbs", "aria-label": CG.t("asset.crumbs") }, el("ol", {}, items));
  }

  function rangePicker(current, onPick) {
    return el("div", { class: "asset-range", role: "group", "aria-label": CG.t("asset.range") },
      RANGES.map(([key]) => el("button", { type: "button", class: "btn", "aria-pressed": String(key === current),
                                           onclick: () => onPick(key) }, CG.t(`asset.range.${key}`))));
  }

  // -- charts -------------------------------------------------------------------------------------

  const localeOf = () => (CG.lang === "fr" ? "fr-FR" : "en-GB");

  /** x-axis labels in Europe/Paris and the page's language: hours over a day or so, else dates. */
  function timeLabels(u, splits) {
    const span = (u.scales.x.max || 0) - (u.scales.x.min || 0);
    const opts = span <= 36 * 3600 ? { hour: "2-digit", minute: "2-digit" }
      : span <= 10 * 86400 ? { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" }
        : { day: "2-digit", month: "2-digit" };
    const fmt = new Intl.DateTimeFormat(localeOf(), { timeZone: CG.TZ, ...opts });
    return splits.map((v) => (v === null || v === undefined ? "" : fmt.format(v * 1000)));
  }

  function dayLabels(u, splits) {
    const fmt = new Intl.DateTimeFormat(localeOf(), { timeZone: CG.TZ, day: "2-digit", month: "2-digit" });
    return splits.map((v) => (v === null || v === undefined ? "" : fmt.format(v * 1000)));
  }

  /**
   * A uPlot chart in `box`, as wide as the box (redrawn when it resizes); returns a cleanup function.
   * `days`: one point a day (a bar's middle at noon), the x axis padded half a day each side.
   */
  function plot(box, series, data, opts, days) {
    const points = data.slice(1).reduce((n, col) => n + col.filter((v) => v !== null && v !== undefined).length, 0);
    box.dataset.points = String(points);
    if (!points) {
      box.append(el("p", { class: "note" }, CG.t("asset.nodata")));
      return () => {};
    }
    const axes = (opts && opts.axes) || [{}, {}];
    const base = {
      width: Math.max(260, box.clientWidth - 4),
      height: box.clientWidth < 500 ? 200 : 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), CG.TZ),
      series: [{ label: CG.t("asset.when"),
                 value: (u, v) => (v === null ? "" : days ? CG.fmtDate(v * 1000) : CG.fmtTime(v * 1000, "datetime")) },
               ...series],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      ...opts,
      axes: [{ ...axes[0], values: days ? dayLabels : timeLabels, space: 70 }, ...axes.slice(1)],
    };
    if (days) {  // a label on a day's bar, every day or every few days as the width allows
      const xs = data[0];
      base.axes[0].splits = (u) => xs.filter((_, i) => i % Math.max(1, Math.ceil((xs.length * 60) / Math.max(1, u.bbox.width / devicePixelRatio))) === 0);
    }
    if (days) {  // fixed: with one day only, uPlot's own x range spans years
      const xs = data[0];
      base.scales = { ...(base.scales || {}), x: { time: true, auto: false,
                                                    range: [Math.min(...xs) - 43200, Math.max(...xs) + 43200] } };
    }
    const u = new uPlot(base, data, box);
    let width = box.clientWidth;
    const observer = new ResizeObserver(() => {
      const now = box.clientWidth;
      if (Math.abs(now - width) > 4) {
        width = now;
        u.setSize({ width: Math.max(260, now - 4), height: now < 500 ? 200 : 240 });
      }
    });
    observer.observe(box);
    return () => { observer.disconnect(); u.destroy(); };
  }

  const line = (label, stroke, extra) => ({ label, stroke, width: 2, spanGaps: true,
                                            value: (u, v) => (v === null || v === undefined ? "" : num(v, 1)), ...extra });
  const bars = (label, stroke, fill) => ({ label, stroke, fill, width: 1, points: { show: false },
                                           paths: uPlot.paths.bars({ size: [0.7, 48] }),
                                           value: (u, v) => (v === null || v === undefined ? "" : num(v, 2)) });

  function chartBox(title, note) {
    const box = el("div", { class: "asset-chart" });
    const section = el("section", { class: "card asset-card" }, el("h2", {}, title), note ? el("p", { class: "note" }, note) : null, box);
    return { section, box };
  }

  const daySeconds = (day) => {  // "2026-11-28" -> noon of that day in Paris, Unix seconds (a bar's middle)
    const [y, m, d] = day.split("-").map(Number);
    return Date.UTC(y, m - 1, d, 11) / 1000;
  };

  function bucketNote(chart) {
    return chart.bucket_ms ? CG.t("asset.bucket", { size: duration(chart.bucket_ms) }) : CG.t("asset.raw");
  }

  // -- a lamp ---------------------------------------------------------------------------------------

  /** The command buttons (commands.js) the operator's rank allows for `target`, or nothing. */
  function commandButtons(target) {
    return CG.commands && typeof CG.commands.buttons === "function" ? CG.commands.buttons(target) : null;
  }

  function lampFacts(doc) {
    const v = doc.latest.values || {};
    const fault = doc.open_faults[0];
    const state = fault ? CG.t("asset.failed") : v.lamp_on === true ? CG.t("asset.on")
      : v.lamp_on === false ? CG.t("asset.off") : CG.t("asset.unknown");
    const facts = [
      [CG.t("asset.state"), state], [CG.t("asset.level"), v.level_pct === undefined ? CG.MISSING : `${num(v.level_pct, 0)} %`],
      [CG.t("asset.powerNow"), v.power_w === undefined ? CG.MISSING : `${num(v.power_w, 1)} W`],
      [CG.t("asset.voltageNow"), v.voltage_v === undefined ? CG.MISSING : `${num(v.voltage_v, 1)} V`],
      [CG.t("asset.lastReading"), CG.fmtTime(doc.latest.ts_ms, "datetime")],
      [CG.t("asset.burnTotal"), doc.burn_total_h === null || doc.burn_total_h === undefined ? CG.MISSING : `${num(doc.burn_total_h, 0)} h`],
    ];
    return el("section", { class: "card asset-card asset-facts" },
      el("dl", { class: "asset-dl" }, facts.flatMap(([k, val]) => [el("dt", {}, k), el("dd", {}, val)])),
      el("p", { class: fault ? "pill down" : "pill ok" },
         fault ? CG.t("asset.fault", { since: CG.fmtTime(fault.since_ms, "datetime") }) : CG.t("asset.noFault")),
      commandButtons({ gateway: doc.gateway, lamp: doc.device, label: CG.t("asset.lamp", { device: doc.device }) }));
  }

  function programCard(group, programs) {
    const rows = [];
    if (group) {
      rows.push([CG.t("asset.programName"), group.program || CG.MISSING],
                [CG.t("asset.level"), group.level_pct === null ? CG.MISSING : `${num(group.level_pct, 0)} %`],
                [CG.t("asset.mode"), group.mode || CG.MISSING],
                [CG.t("asset.lastSwitch"), CG.fmtTime(group.last_switch_ms, "datetime")],
                [CG.t("asset.nextSwitch"), group.next_switch ? CG.fmtTime(group.next_switch.at, "datetime") + " \u2192 " + CG.fmtNum(group.next_switch.level_pct) + " %" : CG.t("asset.nextSwitchNote")]);
    }
    const pushed = programs
      ? [el("p", {}, CG.t("asset.pushed", { who: programs.issued_by, when: CG.fmtTime(programs.applied_ms, "datetime") })),
         el("p", { class: "note" }, CG.t("asset.programs", { names: programs.program.map((p) => p.name).join(", ") || CG.MISSING })),
         el("p", { class: "note" }, CG.t("asset.calendars", { names: programs.calendar.map((c) => c.name).join(", ") || CG.MISSING }))]
      : [el("p", { class: "note" }, CG.t("asset.pushedNone"))];
    return card(CG.t("asset.program"),
      el("h3", { class: "asset-sub" }, group ? CG.t("asset.group", { group: group.group }) : CG.t("asset.noGroup")),
      rows.length ? el("dl", { class: "asset-dl" }, rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])) : null,
      ...pushed);
  }

  function eventsCard(title, events) {
    const rows = events.map((e) => el("tr", {}, el("td", {}, CG.fmtTime(e.ts_ms, "datetime")), el("td", {}, e.code),
      el("td", {}, el("span", { class: `pill ${e.severity === "critical" ? "critical" : e.severity === "major" ? "major" : "ack"}` }, e.severity)),
      el("td", { class: "asset-detail" }, detailText(e.detail))));
    return card(title, table([CG.t("asset.when"), CG.t("asset.event"), CG.t("asset.severity"), CG.t("asset.detail")],
                             rows, CG.t("asset.noEvents")));
  }

  function rangeQuery(rangeKey) {
    const span = RANGES.find(([k]) => k === rangeKey)[1];
    const to = Date.now();
    return `from=${to - span}&to=${to}`;
  }

  async function lampPage(view, [gateway, device]) {
    const state = { range: "24h", cleanups: [] };
    async function draw() {
      for (const fn of state.cleanups.splice(0)) fn();
      const doc = await CG.api(`/control/api/lamps/${enc(gateway)}/${enc(device)}?${rangeQuery(state.range)}`);
      view.replaceChildren();
      const head = el("div", { class: "asset-head" },
        crumbs([[CG.t("asset.overview"), "#/"], [doc.commune_name || doc.commune, `#/commune/${enc(doc.commune)}`],
                [doc.cabinet || doc.gateway, `#/cabinet/${enc(doc.gateway)}`], [device, null]]),
        el("h2", { class: "asset-title" }, CG.t("asset.lamp", { device })),
        rangePicker(state.range, (key) => { state.range = key; draw().catch(fail); }));
      const s = doc.series;
      const levels = chartBox(CG.t("asset.levels"), bucketNote(s));
      const power = chartBox(CG.t("asset.power"), bucketNote(s));
      const days = chartBox(CG.t("asset.days"));
      view.append(head, el("div", { class: "asset-grid" }, lampFacts(doc), programCard(doc.group, doc.programs),
        levels.section, power.section, days.section, eventsCard(CG.t("asset.history"), doc.events)));
      const ts = s.ts.map((v) => v / 1000);
      const stepped = uPlot.paths.stepped({ align: 1 });
      state.cleanups.push(plot(levels.box, [
        line(CG.t("asset.commanded"), COLORS.commanded, { paths: stepped }),
        line(CG.t("asset.actual"), COLORS.actual, { dash: [5, 4] }),
      ], [ts, s.level_commanded_pct, s.level_pct], { scales: { y: { range: [0, 105] } } }));
      const volts = [line(CG.t("asset.voltage_v"), COLORS.voltage, { scale: "V" })];
      state.cleanups.push(plot(power.box, [line(CG.t("asset.power_w"), COLORS.power, { scale: "W" }), ...volts],
        [ts, s.power_w, s.voltage_v],
        { axes: [{}, { scale: "W", label: "W" }, { scale: "V", label: "V", side: 1, grid: { show: false } }] }));
      state.cleanups.push(plot(days.box, [bars(CG.t("asset.energy_kwh"), COLORS.energy, "rgba(47, 111, 223, .45)"),
                                          line(CG.t("asset.burn_h"), COLORS.burn, { scale: "h" })],
        [doc.days.map((d) => daySeconds(d.day)), doc.days.map((d) => d.energy_kwh), doc.days.map((d) => d.burn_h)],
        { axes: [{}, { label: "kWh" }, { scale: "h", label: "h", side: 1, grid: { show: false } }] }, true));
    }
    const fail = (err) => view.append(el("p", { class: "error", role: "alert" }, err.detail || err.message || String(err)));
    view.append(el("p", { class: "note" }, CG.t("asset.loading")));
    await draw();
    return () => { for (const fn of state.cleanups.splice(0)) fn(); };
  }

  // -- a cabinet ------------------------------------------------------------------------------------

  function lampRows(doc) {
    return doc.lamps.map((l) => {
      const href = `#/lamp/${enc(doc.gateway)}/${enc(l.device)}`;
      const state = l.fault_since_ms ? CG.t("asset.failed") : l.lamp_on === true ? CG.t("asset.on")
        : l.lamp_on === false ? CG.t("asset.off") : CG.t("asset.unknown");
      return el("tr", { class: "clickable", onclick: (e) => { if (e.target.tagName !== "A") CG.go(href); } },
        el("td", {}, el("a", { href }, l.device)),
        el("td", {}, el("span", { class: `pill ${l.fault_since_ms ? "down" : l.lamp_on ? "ok" : "ack"}` }, state)),
        el("td", { class: "num" }, l.level_pct === null || l.level_pct === undefined ? CG.MISSING : `${num(l.level_pct, 0)} %`),
        el("td", { class: "num" }, l.power_w === null || l.power_w === undefined ? CG.MISSING : `${num(l.power_w, 1)} W`),
        el("td", {}, CG.fmtTime(l.last_ts_ms)));
    });
  }

  async function cabinetPage(view, [gateway]) {
    const state = { range: "7d", cleanups: [] };
    async function draw() {
      for (const fn of state.cleanups.splice(0)) fn();
      const doc = await CG.api(`/control/api/cabinets/${enc(gateway)}/charts?${rangeQuery(state.range)}`);
      view.replaceChildren();
      const name = doc.cabinet || doc.gateway;
      const head = el("div", { class: "asset-head" },
        crumbs([[CG.t("asset.overview"), "#/"], [doc.commune_name || doc.commune, `#/commune/${enc(doc.commune)}`], [name, null]]),
        el("h2", { class: "asset-title" }, CG.t("asset.cabinet", { name })),
        el("a", { class: "asset-link", href: `#/commune/${enc(doc.commune)}/charts` },
           CG.t("asset.communeLink", { name: doc.commune_name || doc.commune })),
        rangePicker(state.range, (key) => { state.range = key; draw().catch(fail); }));
      const lamps = card(CG.t("asset.lamps", { n: doc.lamps.length }),
        table([CG.t("asset.device"), CG.t("asset.state"), CG.t("asset.level"), CG.t("asset.powerNow"), CG.t("asset.lastReading")],
              lampRows(doc), CG.MISSING, [false, false, true, true, false]));
      lamps.classList.add("asset-lamps");
      const energy = chartBox(CG.t("asset.cabinetDays"));
      const volts = chartBox(CG.t("asset.supply"));
      const alarms = card(CG.t("asset.alarms"), table([CG.t("asset.when"), CG.t("asset.event"), CG.t("asset.device"), CG.t("asset.status")],
        doc.alarms.map((a) => el("tr", {}, el("td", {}, CG.fmtTime(a.first_ts_ms, "datetime")),
                                  el("td", {}, el("a", { href: `#/alarms/${a.id}` }, alarmKind(a.kind))),
                                  el("td", {}, a.devices_total === 1 && a.device ? a.device
                                    : CG.t("asset.alarmDevices", { n: CG.fmtNum(a.devices_total) })),
                                  el("td", {}, known(`alarms.state.${a.state}`) ? CG.t(`alarms.state.${a.state}`) : a.state))),
        CG.t("asset.noAlarms")));
      const groups = card(CG.t("asset.groups"), table([CG.t("asset.group", { group: "" }).trim(), CG.t("asset.programName"), CG.t("asset.level"), CG.t("asset.lastSwitch")],
        doc.groups.map((g) => el("tr", {}, el("td", {}, g.group), el("td", {}, g.program || CG.MISSING),
                                  el("td", { class: "num" }, g.level_pct === null ? CG.MISSING : `${num(g.level_pct, 0)} %`),
                                  el("td", {}, CG.fmtTime(g.last_switch_ms, "datetime")))), CG.t("asset.noGroups"), [false, false, true, false]),
        ...doc.groups.map((g) => {
          const buttons = commandButtons({ gateway: doc.gateway, group: g.group, label: CG.t("asset.group", { group: g.group }) });
          return buttons ? el("div", { class: "asset-group-cmd" }, el("h3", { class: "asset-sub" }, CG.t("asset.group", { group: g.group })), buttons) : null;
        }));
      view.append(head, el("div", { class: "asset-grid" }, lamps, energy.section, volts.section, alarms, groups,
                           programCard(null, doc.programs)));
      state.cleanups.push(plot(energy.box, [bars(CG.t("asset.energy_kwh"), COLORS.energy, "rgba(47, 111, 223, .45)"),
                                            line(CG.t("asset.burn_h"), COLORS.burn, { scale: "h" })],
        [doc.days.map((d) => daySeconds(d.day)), doc.days.map((d) => d.energy_kwh), doc.days.map((d) => d.burn_h)],
        { axes: [{}, { label: "kWh" }, { scale: "h", label: "h", side: 1, grid: { show: false } }] }, true));
      const v = doc.voltage;
      state.cleanups.push(plot(volts.box, [line(CG.t("asset.voltage_v"), COLORS.voltage),
                                           line(CG.t("asset.voltage_min"), "#b8c0cc", { width: 1 }),
                                           line(CG.t("asset.voltage_max"), "#b8c0cc", { width: 1 })],
        [v.ts.map((x) => x / 1000), v.mean, v.min, v.max], {}));
    }
    const fail = (err) => view.append(el("p", { class: "error", role: "alert" }, err.detail || err.message || String(err)));
    await draw();
    return () => { for (const fn of state.cleanups.splice(0)) fn(); };
  }

  // -- a junction -----------------------------------------------------------------------------------

  async function junctionPage(view, args) {
    const path = args.length >= 2 ? `${enc(args[0])}/${enc(args[1])}` : enc(args[0]);
    const doc = await CG.api(`/control/api/junctions/${path}?${rangeQuery("24h")}`);
    const name = doc.junction || `${doc.gateway} / ${doc.device}`;
    const c = doc.current || {};
    const modeButton = doc.junction && CG.commands && CG.commands.can("junctionMode")
      ? el("button", { type: "button", class: "btn", onclick: () => CG.commands.junctionMode(doc.junction) }, CG.t("asset.changeMode"))
      : null;
    const now = card(CG.t("asset.junctionNow"), el("dl", { class: "asset-dl" },
      [[CG.t("asset.signalMode"), modeName(c.mode)], [CG.t("asset.plan"), c.plan ? String(c.plan) : CG.MISSING],
       [CG.t("asset.stage"), c.stage ? String(c.stage) : CG.MISSING], [CG.t("asset.central"), yesNo(c.central)],
       [CG.t("asset.lastReading"), CG.fmtTime(c.ts_ms, "datetime")]].flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      modeButton);
    const plans = card(CG.t("asset.planTable"), table([CG.t("asset.signalMode"), CG.t("asset.plan"), CG.t("asset.duration"), CG.t("asset.entered")],
      doc.plans.map((p) => el("tr", {}, el("td", {}, modeName(p.mode)), el("td", { class: "num" }, p.plan ? String(p.plan) : CG.MISSING),
                              el("td", { class: "num" }, duration(p.duration_ms)), el("td", { class: "num" }, String(p.entered)))),
      CG.MISSING, [false, true, true, true]));
    const changes = card(CG.t("asset.changes"), table([CG.t("asset.when"), CG.t("asset.signalMode"), CG.t("asset.plan"), CG.t("asset.central")],
      [...doc.changes].reverse().slice(0, 200).map((x) => el("tr", {}, el("td", {}, CG.fmtTime(x.ts_ms, "datetime")),
        el("td", {}, modeName(x.mode)), el("td", { class: "num" }, x.plan ? String(x.plan) : CG.MISSING), el("td", {}, yesNo(x.central)))),
      CG.MISSING, [false, false, true, false]));
    const commands = card(CG.t("asset.commands"), table([CG.t("asset.when"), CG.t("asset.event"), CG.t("asset.by"), CG.t("asset.status")],
      doc.commands.map((x) => el("tr", {}, el("td", {}, CG.fmtTime(x.issued_at_ms, "datetime")),
        el("td", {}, `${x.action} ${detailText(x.args)}`), el("td", {}, x.issued_by), el("td", {}, x.status))),
      CG.t("asset.noCommands")));
    view.replaceChildren(el("div", { class: "asset-head" },
      crumbs([[CG.t("asset.overview"), "#/"], [doc.commune_name || doc.commune, `#/commune/${enc(doc.commune)}`],
              [doc.cabinet || doc.gateway, `#/cabinet/${enc(doc.gateway)}`], [name, null]]),
      el("h2", { class: "asset-title" }, CG.t("asset.junction", { name }))),
      el("div", { class: "asset-grid" }, now, plans, changes, commands, eventsCard(CG.t("asset.history"), doc.events)));
  }

  // -- a commune's charts ---------------------------------------------------------------------------

  async function communeCharts(view, [insee]) {
    const state = { days: 30, cleanups: [] };
    async function draw() {
      for (const fn of state.cleanups.splice(0)) fn();
      const to = new Date().toLocaleDateString("en-CA", { timeZone: CG.TZ });
      const from = new Date(Date.now() - (state.days - 1) * 24 * H).toLocaleDateString("en-CA", { timeZone: CG.TZ });
      const doc = await CG.api(`/control/api/communes/${enc(insee)}/charts?from=${from}&to=${to}`);
      view.replaceChildren();
      const picker = el("div", { class: "asset-range", role: "group", "aria-label": CG.t("asset.range") },
        [30, 90, 365].map((n) => el("button", { type: "button", class: "btn", "aria-pressed": String(n === state.days),
                                               onclick: () => { state.days = n; draw().catch(fail); } }, CG.t(`asset.days${n}`))));
      const chart = chartBox(CG.t("asset.communeChart"),
        CG.t("asset.installed", { lamps: num(doc.lamps, 0), watts: num(doc.installed_w, 0), known: num(doc.lamps_with_full_power, 0) }));
      const pct = (v) => (v === null || v === undefined ? CG.MISSING : `${v > 0 ? "+" : ""}${num(v, 1)} %`);
      const totals = card(CG.t("asset.total"), el("dl", { class: "asset-dl asset-stack" },
        [[CG.t("asset.thisPeriod", { from: CG.fmtDate(`${doc.from}T12:00:00Z`), to: CG.fmtDate(`${doc.to}T12:00:00Z`) }), num(doc.totals.energy_kwh, 1)],
         [CG.t("asset.previous"), num(doc.totals.previous_kwh, 1)], [CG.t("asset.baseline"), num(doc.totals.baseline_kwh, 1)],
         [CG.t("asset.vsPrevious"), pct(doc.change_vs_previous_pct)],
         [CG.t("asset.vsBaseline"), doc.saved_vs_baseline_pct === null ? CG.MISSING : `${num(doc.saved_vs_baseline_pct, 1)} %`]]
          .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
      view.append(el("div", { class: "asset-head" },
        crumbs([[CG.t("asset.overview"), "#/"], [doc.name, `#/commune/${enc(doc.commune)}`], [CG.t("asset.chartsLink"), null]]),
        el("h2", { class: "asset-title" }, CG.t("asset.commune", { name: doc.name })), picker),
        el("div", { class: "asset-grid asset-wide" }, chart.section, totals));
      const xs = doc.days.map((d) => daySeconds(d.day));
      state.cleanups.push(plot(chart.box, [
        bars(CG.t("asset.thisPeriod", { from: CG.fmtDate(`${doc.from}T12:00:00Z`), to: CG.fmtDate(`${doc.to}T12:00:00Z`) }),
             COLORS.energy, "rgba(47, 111, 223, .45)"),
        line(CG.t("asset.previous"), COLORS.previous, { dash: [4, 4] }),
        line(CG.t("asset.baseline"), COLORS.baseline),
      ], [xs, doc.days.map((d) => d.energy_kwh), doc.days.map((d) => d.previous_kwh), doc.days.map((d) => d.baseline_kwh)],
      { axes: [{}, { label: "kWh" }] }, true));
    }
    const fail = (err) => view.append(el("p", { class: "error", role: "alert" }, err.detail || err.message || String(err)));
    await draw();
    return () => { for (const fn of state.cleanups.splice(0)) fn(); };
  }

  CG.route("lamp", lampPage);
  CG.route("cabinet", cabinetPage);
  CG.route("junction", junctionPage);
  CG.route("commune/*/charts", communeCharts);
})();
