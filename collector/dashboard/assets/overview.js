// Control-centre overview (route ""): the KPIs, the open alarms (H4's widget when it is there), the
// schematic map of the communes, the drill-down metropolis -> commune -> cabinet, the faulty lamps, and
// the panels other modules add (CG.panel: traffic, cameras, parking). Live from the shell's stream.
// Every value from the server goes into the page as text (never as HTML).
"use strict";

(() => {
  const { el } = CG;
  const t = (key, vars) => CG.t(key, vars);
  const SVGNS = "http://www.w3.org/2000/svg";
  const MAP = { width: 800, height: 560, pad: 70 };
  const COLOURS = { ok: "#2e9e5b", partial: "#e8a317", down: "#d64545", none: "#b8c0cc" };
  const ALARM_CODES = ["lamp_failure", "dimming_failure", "day_burner", "communication_failure", "supply_loss",
    "relay_failure", "power_too_high", "power_too_low", "water_leak", "door_open", "clock_untrusted", "clock_suspect",
    "counter_implausible", "record_rejected"];

  CG.strings({
    fr: {
      "overview.kpis": "Indicateurs",
      "overview.online": "Passerelles en ligne",
      "overview.presence.mqtt": "présence MQTT (état et dernière volonté)",
      "overview.presence.uploads": "d'après les envois de données (moins de 5 min)",
      "overview.alarms": "Alarmes ouvertes",
      "overview.alarms.note": "majeures et critiques, non levées",
      "overview.faults": "Lampes en panne",
      "overview.faults.note": "signalées par la télégestion",
      "overview.energy": "Énergie aujourd'hui",
      "overview.reports": "Signalements ouverts",
      "overview.reports.note": "Open311, toutes communes",
      "overview.until": "jusqu'à {time}",
      "overview.vs_last_week": " vs semaine dernière ({kwh} kWh)",
      "overview.no_last_week": "pas de mesure la semaine dernière",
      "overview.map": "Carte des communes",
      "overview.map.label": "Carte schématique des communes",
      "overview.legend.ok": "toutes en ligne",
      "overview.legend.partial": "en partie",
      "overview.legend.down": "hors ligne",
      "overview.legend.none": "sans passerelle",
      "overview.map.title": "{name} — {online}/{gateways} passerelles en ligne (INSEE {insee})",
      "overview.col.since": "Depuis",
      "overview.col.commune": "Commune",
      "overview.col.cabinet": "Armoire",
      "overview.col.device": "Équipement",
      "overview.col.alarm": "Alarme",
      "overview.col.lamp": "Lampe",
      "overview.col.online": "En ligne",
      "overview.col.alarms": "Alarmes",
      "overview.col.faults": "Pannes",
      "overview.col.today": "Aujourd'hui (kWh)",
      "overview.col.last_week": "Sem. dern.",
      "overview.col.state": "État",
      "overview.col.last_upload": "Dernier envoi",
      "overview.col.last_reading": "Dernière mesure",
      "overview.col.meter": "Compteur (kWh)",
      "overview.col.water": "Eau (m³)",
      "overview.col.when": "Quand",
      "overview.col.event": "Événement",
      "overview.col.severity": "Gravité",
      "overview.no_alarm": "Aucune alarme ouverte",
      "overview.no_fault": "Aucune lampe en panne",
      "overview.no_cabinet": "Aucune armoire dans cette commune",
      "overview.no_device": "Aucun équipement n'a encore envoyé de mesure",
      "overview.no_event": "Aucun événement",
      "overview.metropolis": "Métropole",
      "overview.communes": " communes",
      "overview.cabinets": " armoires",
      "overview.cabinets_online": " armoires en ligne",
      "overview.faulty_lamps": " lampes en panne",
      "overview.charts": "Courbes d'énergie de la commune",
      "overview.cabinet": "Armoire {name}",
      "overview.gateway": "passerelle ",
      "overview.last_upload": "dernier envoi ",
      "overview.today": "aujourd'hui ",
      "overview.events": "Derniers événements",
      "overview.online.yes": "en ligne",
      "overview.online.no": "hors ligne",
      "overview.lamp.failed": "en panne",
      "overview.lamp.on": "allumée",
      "overview.lamp.off": "éteinte",
      "overview.never": "jamais",
      "overview.updated": "dernière mise à jour {time}",
      "overview.alarm.lamp_failure": "Lampe en panne",
      "overview.alarm.dimming_failure": "Défaut de gradation",
      "overview.alarm.day_burner": "Allumée de jour",
      "overview.alarm.communication_failure": "Perte de communication",
      "overview.alarm.supply_loss": "Coupure d'alimentation",
      "overview.alarm.relay_failure": "Défaut de relais",
      "overview.alarm.power_too_high": "Puissance trop élevée",
      "overview.alarm.power_too_low": "Puissance trop faible",
      "overview.alarm.water_leak": "Fuite d'eau",
      "overview.alarm.door_open": "Porte ouverte",
      "overview.alarm.clock_untrusted": "Horloge non fiable",
      "overview.alarm.clock_suspect": "Horodatage dans le futur",
      "overview.alarm.counter_implausible": "Compteur invraisemblable",
      "overview.alarm.record_rejected": "Mesure refusée",
      "overview.severity.critical": "critique",
      "overview.severity.major": "majeure",
      "overview.severity.minor": "mineure",
      "overview.severity.warning": "avertissement",
      "overview.severity.info": "information",
    },
    en: {
      "overview.kpis": "Key figures",
      "overview.online": "Gateways online",
      "overview.presence.mqtt": "MQTT presence (state and last will)",
      "overview.presence.uploads": "from data uploads (within 5 min)",
      "overview.alarms": "Open alarms",
      "overview.alarms.note": "major and critical, not cleared",
      "overview.faults": "Failed lamps",
      "overview.faults.note": "reported by remote management",
      "overview.energy": "Energy today",
      "overview.reports": "Open reports",
      "overview.reports.note": "Open311, all communes",
      "overview.until": "until {time}",
      "overview.vs_last_week": " vs last week ({kwh} kWh)",
      "overview.no_last_week": "no reading last week",
      "overview.map": "Map of the communes",
      "overview.map.label": "Schematic map of the communes",
      "overview.legend.ok": "all online",
      "overview.legend.partial": "partly",
      "overview.legend.down": "offline",
      "overview.legend.none": "no gateway",
      "overview.map.title": "{name} — {online}/{gateways} gateways online (INSEE {insee})",
      "overview.col.since": "Since",
      "overview.col.commune": "Commune",
      "overview.col.cabinet": "Cabinet",
      "overview.col.device": "Device",
      "overview.col.alarm": "Alarm",
      "overview.col.lamp": "Lamp",
      "overview.col.online": "Online",
      "overview.col.alarms": "Alarms",
      "overview.col.faults": "Faults",
      "overview.col.today": "Today (kWh)",
      "overview.col.last_week": "Last wk.",
      "overview.col.state": "State",
      "overview.col.last_upload": "Last upload",
      "overview.col.last_reading": "Last reading",
      "overview.col.meter": "Meter (kWh)",
      "overview.col.water": "Water (m³)",
      "overview.col.when": "When",
      "overview.col.event": "Event",
      "overview.col.severity": "Severity",
      "overview.no_alarm": "No open alarm",
      "overview.no_fault": "No failed lamp",
      "overview.no_cabinet": "No cabinet in this commune",
      "overview.no_device": "No device has sent a reading yet",
      "overview.no_event": "No event",
      "overview.metropolis": "Metropolis",
      "overview.communes": " communes",
      "overview.cabinets": " cabinets",
      "overview.cabinets_online": " cabinets online",
      "overview.faulty_lamps": " failed lamps",
      "overview.charts": "The commune's energy charts",
      "overview.cabinet": "Cabinet {name}",
      "overview.gateway": "gateway ",
      "overview.last_upload": "last upload ",
      "overview.today": "today ",
      "overview.events": "Latest events",
      "overview.online.yes": "online",
      "overview.online.no": "offline",
      "overview.lamp.failed": "failed",
      "overview.lamp.on": "on",
      "overview.lamp.off": "off",
      "overview.never": "never",
      "overview.updated": "last updated {time}",
      "overview.alarm.lamp_failure": "Lamp failure",
      "overview.alarm.dimming_failure": "Dimming failure",
      "overview.alarm.day_burner": "Lit in daytime",
      "overview.alarm.communication_failure": "Communication lost",
      "overview.alarm.supply_loss": "Power cut",
      "overview.alarm.relay_failure": "Relay failure",
      "overview.alarm.power_too_high": "Power too high",
      "overview.alarm.power_too_low": "Power too low",
      "overview.alarm.water_leak": "Water leak",
      "overview.alarm.door_open": "Door open",
      "overview.alarm.clock_untrusted": "Clock not trusted",
      "overview.alarm.clock_suspect": "Timestamp in the future",
      "overview.alarm.counter_implausible": "Implausible meter reading",
      "overview.alarm.record_rejected": "Reading refused",
      "overview.severity.critical": "critical",
      "overview.severity.major": "major",
      "overview.severity.minor": "minor",
      "overview.severity.warning": "warning",
      "overview.severity.info": "information",
    },
  });

  const alarmName = (code) => (ALARM_CODES.includes(code) ? t(`overview.alarm.${code}`) : code);
  const severityName = (s) => (["critical", "major", "minor", "warning", "info"].includes(s) ? t(`overview.severity.${s}`) : s);
  // A number the collector could not give (null: a rollup spoiled before counters were checked) reads "—":
  // one missing figure must not stop the page (a TypeError here left the map empty).
  const kwh = (v) => CG.fmtNum(v, 1);
  const when = (ms) => (ms == null ? t("overview.never") : CG.fmtTime(ms));
  const hashOf = (...parts) => `#/${parts.map(encodeURIComponent).join("/")}`;

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function statusClass(c) {
    if (!c.gateways) return "none";
    if (c.online === c.gateways) return "ok";
    return c.online ? "partial" : "down";
  }

  function compare(today, before) {
    if (!Number.isFinite(today) || !Number.isFinite(before)) return [];  // a missing figure compares with nothing
    if (!before) return today ? [t("overview.no_last_week")] : [];
    const pct = Math.round(((today - before) / before) * 100);
    return [el("span", { class: pct > 0 ? "delta-up" : "delta-down" }, `${pct > 0 ? "+" : ""}${pct} %`),
      t("overview.vs_last_week", { kwh: kwh(before) })];
  }

  function table(headers, numeric, attrs) {
    const tbody = el("tbody");
    const thead = el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, h))));
    return [el("div", { class: "scroll", tabindex: "0" }, el("table", { class: "list", ...(attrs || {}) }, thead, tbody)), tbody];
  }

  /** rows(tbody, items, cells, empty, link, key): `link(item)` a hash the row opens (its first cell is the link);
   *  `key(item)` names its row (data-key), for patch(). */
  function rows(tbody, items, cells, empty, link, key) {
    tbody.replaceChildren();
    if (!items.length) {
      tbody.append(el("tr", { class: "empty" }, el("td", { colspan: "9" }, empty)));
      return;
    }
    for (const item of items) tbody.append(row(item, cells, link, key));
  }

  function row(item, cells, link, key) {
    const hash = link ? link(item) : null;
    const tr = el("tr", hash ? { class: "clickable", onclick: (e) => { if (!e.target.closest("a")) CG.go(hash); } } : {});
    if (key) tr.dataset.key = key(item);
    cells(item).forEach((c, i) => {
      const td = c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c);
      if (i === 0 && hash) td.replaceChildren(el("a", { href: hash }, ...td.childNodes));
      tr.append(td);
    });
    return tr;
  }

  /** patch(tbody, items, delta, ...): the rows of `delta` (a stream's, CG.applyDelta) replaced in place, the
   *  removed ones taken out, the order followed; `items` is the whole list after the delta. */
  function patch(tbody, items, changed, removed, order, cells, empty, link, key) {
    if (!items.length || !tbody.querySelector("tr[data-key]")) {
      rows(tbody, items, cells, empty, link, key);
      return;
    }
    const byKey = new Map([...tbody.querySelectorAll("tr[data-key]")].map((tr) => [tr.dataset.key, tr]));
    for (const k of removed || []) { byKey.get(k)?.remove(); byKey.delete(k); }
    for (const item of changed || []) {
      const tr = row(item, cells, link, key), was = byKey.get(tr.dataset.key);
      if (was) was.replaceWith(tr);
      else tbody.append(tr);
      byKey.set(tr.dataset.key, tr);
    }
    if (order) tbody.append(...order.filter((k) => byKey.has(k)).map((k) => byKey.get(k)));
  }

  const num = (text) => el("td", { class: "num" }, text);
  const pill = (cls, text) => el("span", { class: `pill ${cls}` }, text);
  const onlinePill = (on) => pill(on ? "ok" : "down", t(on ? "overview.online.yes" : "overview.online.no"));

  function deviceState(d) {
    if (d.fault_since_ms != null) return pill("down", t("overview.lamp.failed"));
    if (d.lamp_on === true) return pill("ok", t("overview.lamp.on"));
    if (d.lamp_on === false) return pill("ack", t("overview.lamp.off"));
    return "";
  }

  function kpi(id, cls, title, value, note) {
    return el("article", { class: `kpi ${cls}`, id }, el("h2", {}, title), el("p", { class: "value" }, value),
      el("p", { class: "note" }, note));
  }

  function skeleton() {
    const kpis = el("section", { class: "kpis", "aria-label": t("overview.kpis") },
      kpi("kpi-online", "", t("overview.online"), [el("span", { id: "online-count" }, "–"),
        el("span", { class: "of" }, " / ", el("span", { id: "gateway-count" }, "–"))], el("span", { id: "presence-source" })),
      kpi("kpi-alarms", "alarm", t("overview.alarms"), el("span", { id: "alarm-count" }, "–"), t("overview.alarms.note")),
      kpi("kpi-faults", "fault", t("overview.faults"), el("span", { id: "fault-count" }, "–"), t("overview.faults.note")),
      kpi("kpi-energy", "energy", t("overview.energy"), [el("span", { id: "energy-today" }, "–"), " ", el("span", { class: "unit" }, "kWh")],
        el("span", { id: "energy-compare" })),
      kpi("kpi-reports", "reports", t("overview.reports"), el("span", { id: "report-count" }, "–"), t("overview.reports.note")));
    const alarmSlot = el("section", { class: "card alarms-card", id: "alarm-widget", "aria-labelledby": "alarm-widget-title" });
    const legend = el("div", { class: "legend" }, ["ok", "partial", "down", "none"].map((k) => el("span", {}, el("i", { class: `sw ${k}` }), t(`overview.legend.${k}`))));
    const mapCard = el("section", { class: "card map-card", "aria-labelledby": "map-title" },
      el("div", { class: "card-head" }, el("h2", { id: "map-title" }, t("overview.map")), legend),
      svg("svg", { id: "map", viewBox: `0 0 ${MAP.width} ${MAP.height}`, role: "group", "aria-label": t("overview.map.label") }));
    const detailCard = el("section", { class: "card detail-card", "aria-label": t("overview.metropolis") },
      el("nav", { class: "crumbs", id: "crumbs", "aria-label": t("overview.metropolis") }), el("div", { id: "detail" }));
    const [faultsWrap] = table([t("overview.col.since"), t("overview.col.commune"), t("overview.col.cabinet"), t("overview.col.lamp")], [], { id: "faults" });
    const faultsCard = el("section", { class: "card faults-card", "aria-labelledby": "faults-title" },
      el("div", { class: "card-head" }, el("h2", { id: "faults-title" }, t("overview.faults"))), faultsWrap);
    // the alarms and the faulty lamps one under the other, whatever the height of the map beside them
    const grid = el("div", { class: "grid overview-grid" }, el("div", { class: "overview-col" }, alarmSlot, faultsCard),
      mapCard, detailCard, ...CG.panels);
    return { root: el("div", { class: "overview" }, kpis, grid), alarmSlot };
  }

  /** H4's widget when alarms.js provides it; until then the open alarms of the summary. */
  function fillAlarmSlot(slot) {
    if (typeof CG.widgets.alarms === "function") {
      try {
        return CG.widgets.alarms(slot, { compact: true });
      } catch (err) {  // the rest of the overview stands; the summary's alarms take the widget's place
        console.error(err);
        slot.replaceChildren();
      }
    }
    const [wrap] = table([t("overview.col.since"), t("overview.col.commune"), t("overview.col.cabinet"), t("overview.col.device"), t("overview.col.alarm")], [], { id: "alarms" });
    slot.append(el("div", { class: "card-head" }, el("h2", { id: "alarm-widget-title" }, t("overview.alarms"))), wrap);
    return null;
  }

  // -- the schematic map ---------------------------------------------------------------------------

  function drawMap(communes, selected) {
    const map = document.getElementById("map");
    if (!map) return;
    map.replaceChildren();
    if (!communes.length) return;
    const lats = communes.map((c) => c.lat), lons = communes.map((c) => c.lon);
    const mid = ((Math.min(...lats) + Math.max(...lats)) / 2) * Math.PI / 180;
    const xs = lons.map((lon) => lon * Math.cos(mid)), ys = lats;
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const scale = Math.min((MAP.width - 2 * MAP.pad) / (x1 - x0 || 1), (MAP.height - 2 * MAP.pad) / (y1 - y0 || 1));
    const ox = (MAP.width - (x1 - x0) * scale) / 2, oy = (MAP.height - (y1 - y0) * scale) / 2;
    const at = (c) => [ox + (c.lon * Math.cos(mid) - x0) * scale, oy + (y1 - c.lat) * scale];
    const placed = communes.map((c) => { const [x, y] = at(c); return { x, y, r: c.gateways ? 10 + 3 * Math.sqrt(c.gateways) : 6 }; });
    const labels = placeLabels(communes, placed);
    communes.forEach((c, i) => {
      const { x, y, r } = placed[i];
      const label = t("overview.map.title", { name: c.name, insee: c.insee, online: c.online, gateways: c.gateways });
      const a = svg("a", { class: "commune" + (c.insee === selected ? " selected" : ""), "data-insee": c.insee,
        href: hashOf("commune", c.insee), transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` });
      a.append(svg("title", {}, label));  // its accessible name too
      a.append(svg("circle", { class: "halo", r: r + 8 }));
      a.append(svg("circle", { class: "disc", r, fill: COLOURS[statusClass(c)] }));
      if (c.gateways) a.append(svg("text", { class: "count", "text-anchor": "middle", dy: "0.35em", "aria-hidden": "true" }, `${c.online}/${c.gateways}`));
      a.append(svg("text", { class: "name", "text-anchor": labels[i].anchor, x: labels[i].dx, y: labels[i].dy }, c.name));
      for (const [n, colour, side] of [[c.alarms, COLOURS.down, 1], [c.faulty_lamps, COLOURS.partial, -1]]) {
        if (!n) continue;
        const b = svg("g", { class: "badge", "aria-hidden": "true", transform: `translate(${side * (r * 0.8)},${-r * 0.8})` });
        b.append(svg("circle", { r: 8, fill: colour }), svg("text", { "text-anchor": "middle", dy: "0.35em" }, String(n)));
        a.append(b);
      }
      map.append(a);
    });
  }

  // Greedy label placement: below, above, right or left of its disc, the first that overlaps
  // no label placed so far nor another disc (communes a few kilometres apart crowd the centre).
  function placeLabels(communes, placed) {
    const boxes = [];
    const overlaps = (b) => boxes.some((o) => b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1)
      || placed.some((p) => b.x0 < p.x + p.r && p.x - p.r < b.x1 && b.y0 < p.y + p.r && p.y - p.r < b.y1);
    const order = communes.map((_, i) => i).sort((a, b) => placed[b].r - placed[a].r);
    const out = [];
    for (const i of order) {
      const { x, y, r } = placed[i];
      const w = communes[i].name.length * 7.2, h = 14;
      const options = [
        { anchor: "middle", dx: 0, dy: r + 15, box: [x - w / 2, y + r + 3, x + w / 2, y + r + 3 + h] },
        { anchor: "middle", dx: 0, dy: -r - 6, box: [x - w / 2, y - r - 6 - h + 3, x + w / 2, y - r - 3] },
        { anchor: "start", dx: r + 5, dy: 4, box: [x + r + 5, y - h / 2, x + r + 5 + w, y + h / 2] },
        { anchor: "end", dx: -r - 5, dy: 4, box: [x - r - 5 - w, y - h / 2, x - r - 5, y + h / 2] },
      ].map((o) => ({ ...o, box: { x0: o.box[0], y0: o.box[1], x1: o.box[2], y1: o.box[3] } }));
      const pick = options.find((o) => !overlaps(o.box)) || options[0];
      boxes.push(pick.box);
      out[i] = pick;
    }
    return out;
  }

  // -- the overview --------------------------------------------------------------------------------

  function mount(view, kind, key) {
    const { root, alarmSlot } = skeleton();
    view.append(root);
    const widgetCleanup = fillAlarmSlot(alarmSlot);
    let summary = null;
    let detailTicket = 0;
    const $ = (id) => document.getElementById(id);
    const communeName = (insee) => (summary.communes.find((c) => c.insee === insee) || { name: insee }).name;

    function crumbs(parts) {
      $("crumbs").replaceChildren(...parts.flatMap(([label, hash], i) => [
        i ? " › " : "", hash ? el("a", { href: hash }, label) : el("span", { "aria-current": "page" }, label)]));
    }

    function renderSummary(doc) {
      summary = doc;
      const s = doc.totals;
      $("online-count").textContent = s.online;
      $("gateway-count").textContent = s.gateways;
      $("presence-source").textContent = t(doc.presence_source === "mqtt" ? "overview.presence.mqtt" : "overview.presence.uploads");
      $("alarm-count").textContent = s.alarms;
      $("fault-count").textContent = s.faulty_lamps;
      $("report-count").textContent = s.open_reports;
      const today = $("energy-today");
      today.textContent = kwh(s.energy_today_kwh);
      today.dataset.kwh = s.energy_today_kwh;
      const cmp = $("energy-compare");
      const versus = compare(s.energy_today_kwh, s.energy_last_week_kwh);
      cmp.replaceChildren(t("overview.until", { time: s.energy_until }), ...(versus.length ? [" · ", ...versus] : []));
      cmp.dataset.kwh = s.energy_last_week_kwh;
      drawMap(doc.communes, kind === "commune" ? key : null);
      const alarms = document.querySelector("#alarms tbody");
      if (alarms) {
        rows(alarms, doc.alarms, (a) => [when(a.ts_ms), communeName(a.commune), a.gateway, a.device,
          el("td", {}, pill(a.status === "acknowledged" ? "ack" : a.severity, alarmName(a.code)))],
        t("overview.no_alarm"), (a) => hashOf("cabinet", a.gateway));
      }
      rows(document.querySelector("#faults tbody"), doc.faulty_lamps,
        (f) => [when(f.since_ms), communeName(f.commune), f.gateway, f.device],
        t("overview.no_fault"), (f) => hashOf("cabinet", f.gateway));
      document.body.dataset.updates = Number(document.body.dataset.updates || 0) + 1;
      $("updated").textContent = t("overview.updated", { time: CG.fmtTime(Date.now(), "seconds") });
    }

    function renderMetropolis() {
      crumbs([[t("overview.metropolis"), null]]);
      const [wrap, tbody] = table([t("overview.col.commune"), t("overview.col.online"), t("overview.col.alarms"),
        t("overview.col.faults"), t("overview.col.today"), t("overview.col.last_week")], [1, 2, 3, 4, 5]);
      const list = [...summary.communes].sort((a, b) => a.name.localeCompare(b.name, "fr"));
      rows(tbody, list, (c) => [c.name, num(`${c.online}/${c.gateways}`), num(c.alarms), num(c.faulty_lamps),
        num(kwh(c.energy_today_kwh)), num(kwh(c.energy_last_week_kwh))], "", (c) => hashOf("commune", c.insee));
      $("detail").replaceChildren(el("h3", {}, summary.territory), el("div", { class: "facts" },
        el("span", {}, el("b", {}, String(summary.communes.length)), t("overview.communes")),
        el("span", {}, el("b", {}, String(summary.totals.gateways)), t("overview.cabinets"))), wrap);
    }

    // The commune's view comes by its own stream: its document once, then only the cabinets that changed
    // (`delta`, keyed by gateway), patched into the table in place (never the whole table fetched again).
    let commune = null;
    const cabinetCells = (g) => [g.cabinet ? `${g.name} (${g.cabinet})` : g.name, el("td", {}, onlinePill(g.online)),
      when(g.last_seen_ms), num(kwh(g.energy_today_kwh)), num(kwh(g.energy_last_week_kwh)), num(g.alarms), num(g.faulty_lamps)];
    const cabinetLink = (g) => hashOf("cabinet", g.name);
    const cabinetKey = (g) => g.name;

    function communeFacts(doc) {
      const c = doc.commune;
      const online = doc.cabinets.filter((g) => g.online).length;
      return el("div", { class: "facts", id: "commune-facts" }, el("span", {}, "INSEE ", el("b", {}, c.insee)),
        el("span", {}, el("b", {}, `${online}/${doc.cabinets.length}`), t("overview.cabinets_online")),
        el("span", {}, el("b", {}, String(doc.faulty_lamps.length)), t("overview.faulty_lamps")),
        CG.hasRoute("commune/*/charts") ? el("a", { href: hashOf("commune", c.insee, "charts") }, t("overview.charts")) : null);
    }

    function renderCommune(doc) {
      const c = doc.commune;
      crumbs([[t("overview.metropolis"), "#/"], [c.name, null]]);
      const [wrap, tbody] = table([t("overview.col.cabinet"), t("overview.col.state"), t("overview.col.last_upload"),
        t("overview.col.today"), t("overview.col.last_week"), t("overview.col.alarms"), t("overview.col.faults")], [3, 4, 5, 6],
      { id: "cabinets" });
      rows(tbody, doc.cabinets, cabinetCells, t("overview.no_cabinet"), cabinetLink, cabinetKey);
      $("detail").replaceChildren(el("h3", {}, c.name), communeFacts(doc), wrap);
    }

    function patchCommune(delta) {
      commune = CG.applyDelta(commune, delta, "cabinets", "name");
      const tbody = document.querySelector("#cabinets tbody");
      if (!tbody) { renderCommune(commune); return; }
      patch(tbody, commune.cabinets, delta.cabinets, delta.removed, delta.order, cabinetCells, t("overview.no_cabinet"),
        cabinetLink, cabinetKey);
      $("commune-facts").replaceWith(communeFacts(commune));
    }

    function showDetailError(err) {
      if ($("detail")) $("detail").replaceChildren(el("p", { class: "error", role: "alert" }, t("shell.error", { detail: err.detail || err.message })));
    }

    function followCommune(insee) {
      const source = new EventSource(`/control/api/communes/${encodeURIComponent(insee)}/stream`);
      const parse = (e) => { try { return JSON.parse(e.data); } catch (_) { return undefined; } };
      source.addEventListener("commune", (e) => {
        const doc = parse(e);
        if (doc === undefined || !$("detail")) return;
        commune = doc;
        renderCommune(doc);
        document.body.dataset.communeUpdates = Number(document.body.dataset.communeUpdates || 0) + 1;
      });
      source.addEventListener("delta", (e) => {
        const delta = parse(e);
        if (delta === undefined || !commune || !$("detail")) return;
        patchCommune(delta);
        document.body.dataset.communeUpdates = Number(document.body.dataset.communeUpdates || 0) + 1;
      });
      source.addEventListener("error", () => {
        // a refused stream (an unknown commune: 404) is not retried by the browser: say why once
        if (source.readyState === EventSource.CLOSED && !commune) {
          CG.api(`/control/api/communes/${encodeURIComponent(insee)}`)
            .then((doc) => { if (!commune && $("detail")) { commune = doc; renderCommune(doc); } }).catch(showDetailError);
        }
      });
      return () => source.close();
    }

    async function renderCabinet(name) {
      const doc = await CG.api(`/control/api/cabinets/${encodeURIComponent(name)}`);
      const g = doc.gateway;
      crumbs([[t("overview.metropolis"), "#/"], [g.commune_name, hashOf("commune", g.commune)], [g.name, null]]);
      const [devWrap, devBody] = table([t("overview.col.device"), t("overview.col.state"), t("overview.col.last_reading"),
        t("overview.col.meter"), t("overview.col.water")], [3, 4]);
      rows(devBody, doc.devices, (d) => [d.device, el("td", {}, deviceState(d)), when(d.last_ts_ms),
        num(kwh(d.energy_wh / 1000)), num(CG.fmtNum(d.volume_m3))], t("overview.no_device"));
      const [evWrap, evBody] = table([t("overview.col.when"), t("overview.col.device"), t("overview.col.event"), t("overview.col.severity")], []);
      rows(evBody, doc.events, (e) => [when(e.ts_ms), e.device, alarmName(e.code), severityName(e.severity)], t("overview.no_event"));
      return [el("h3", {}, t("overview.cabinet", { name: g.cabinet || g.name })),
        el("div", { class: "facts" }, el("span", {}, onlinePill(g.online)), el("span", {}, t("overview.gateway"), el("b", {}, g.name)),
          el("span", {}, t("overview.last_upload"), el("b", {}, when(g.last_seen_ms))),
          el("span", {}, t("overview.today"), el("b", {}, `${kwh(doc.energy_today_kwh)} kWh`))),
        devWrap, el("h3", { class: "sub" }, t("overview.events")), evWrap];
    }

    async function renderDetail() {
      const ticket = ++detailTicket;
      try {
        if (kind === "commune") {
          // nothing: the commune's own stream (followCommune) brings its view
        } else if (kind === "cabinet") {
          const nodes = await renderCabinet(key);
          if (ticket === detailTicket) $("detail").replaceChildren(...nodes);
        } else {
          renderMetropolis();
        }
      } catch (err) {
        if (ticket === detailTicket) showDetailError(err);
      }
    }

    function update(doc) {
      renderSummary(doc);
      renderDetail();
    }

    let mounted = true;  // the first fetch may answer after the operator has gone to another view
    const unfollow = kind === "commune" ? followCommune(key) : null;
    const off = CG.on("summary", update);
    const known = CG.last("summary");
    if (known) update(known);
    else CG.api("/control/api/summary").then((doc) => { if (mounted && !summary) update(doc); }).catch((err) => console.error(err));
    return () => {
      mounted = false;
      off();
      if (unfollow) unfollow();
      detailTicket += 1;
      if (typeof widgetCleanup === "function") widgetCleanup();
    };
  }

  CG.route("", (view) => mount(view, null));
  CG.route("commune", (view, [insee]) => mount(view, "commune", insee));
  // the cabinet's drill-down in the overview, until asset.js serves its own cabinet page
  if (!CG.hasRoute("cabinet")) CG.route("cabinet", (view, [name]) => mount(view, "cabinet", name));
})();
