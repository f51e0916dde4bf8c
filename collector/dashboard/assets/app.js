// Control-centre page: renders /control/api/* and stays live on /control/api/stream (SSE).
// Every value from the server goes into the page as text (never as HTML).
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const TZ = "Europe/Paris";
const MAP = { width: 800, height: 560, pad: 70 };
const ALARM_NAMES = {
  lamp_failure: "Lampe en panne",
  dimming_failure: "Défaut de gradation",
  day_burner: "Allumée de jour",
  communication_failure: "Perte de communication",
  supply_loss: "Coupure d'alimentation",
  relay_failure: "Défaut de relais",
  power_too_high: "Puissance trop élevée",
  power_too_low: "Puissance trop faible",
  water_leak: "Fuite d'eau",
  door_open: "Porte ouverte",
  clock_untrusted: "Horloge non fiable",
  clock_suspect: "Horodatage dans le futur",
  counter_implausible: "Compteur invraisemblable",
  record_rejected: "Mesure refusée",
};

let summary = null;
let updates = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A number the collector could not give (null: a rollup spoiled before counters were checked) reads "—":
// one missing figure must not stop the page (a TypeError here left the map empty).
const MISSING = "—";
const kwh = (v) => Number.isFinite(v) ? v.toLocaleString("fr-FR", { minimumFractionDigits: 1, maximumFractionDigits: 1 }) : MISSING;
const number = (v) => Number.isFinite(v) ? v.toLocaleString("fr-FR") : MISSING;

function when(ms) {
  if (ms == null) return "jamais";
  const d = new Date(ms);
  const day = (x) => x.toLocaleDateString("fr-FR", { timeZone: TZ });
  const time = d.toLocaleTimeString("fr-FR", { timeZone: TZ, hour: "2-digit", minute: "2-digit" });
  return day(d) === day(new Date()) ? time : `${d.toLocaleDateString("fr-FR", { timeZone: TZ, day: "2-digit", month: "2-digit" })} ${time}`;
}

function compare(today, before) {
  if (!Number.isFinite(today) || !Number.isFinite(before)) return "";  // a missing figure compares with nothing
  if (!before) return today ? "pas de mesure la semaine dernière" : "";
  const pct = Math.round(((today - before) / before) * 100);
  const span = el("span", { class: pct > 0 ? "delta-up" : "delta-down" }, `${pct > 0 ? "+" : ""}${pct} %`);
  return [span, ` vs semaine dernière (${kwh(before)} kWh)`];
}

function communeName(insee) {
  const c = summary && summary.communes.find((x) => x.insee === insee);
  return c ? c.name : insee;
}

function statusClass(c) {
  if (!c.gateways) return "none";
  if (c.online === c.gateways) return "ok";
  return c.online ? "partial" : "down";
}

const COLOURS = { ok: "#2e9e5b", partial: "#e8a317", down: "#d64545", none: "#b8c0cc" };

function go(hash) { if (location.hash !== hash) location.hash = hash; else route(); }

// -- the map -----------------------------------------------------------------------------------

function drawMap(communes) {
  const map = document.getElementById("map");
  map.replaceChildren();
  if (!communes.length) return;
  const lats = communes.map((c) => c.lat), lons = communes.map((c) => c.lon);
  const mid = ((Math.min(...lats) + Math.max(...lats)) / 2) * Math.PI / 180;
  const xs = communes.map((c) => c.lon * Math.cos(mid)), ys = lats;
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const scale = Math.min((MAP.width - 2 * MAP.pad) / (x1 - x0 || 1), (MAP.height - 2 * MAP.pad) / (y1 - y0 || 1));
  const ox = (MAP.width - (x1 - x0) * scale) / 2, oy = (MAP.height - (y1 - y0) * scale) / 2;
  const at = (c) => [ox + (c.lon * Math.cos(mid) - x0) * scale, oy + (y1 - c.lat) * scale];
  const selected = (location.hash.match(/^#\/commune\/(\w+)/) || [])[1];
  const placed = communes.map((c) => { const [x, y] = at(c); return { x, y, r: c.gateways ? 10 + 3 * Math.sqrt(c.gateways) : 6 }; });
  const labels = placeLabels(communes, placed);
  communes.forEach((c, i) => {
    const { x, y, r } = placed[i];
    const g = svg("g", { class: "commune" + (c.insee === selected ? " selected" : ""), "data-insee": c.insee,
                         transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` });
    g.append(svg("title", {}, `${c.name} (${c.insee}) — ${c.online}/${c.gateways} passerelles en ligne`));
    g.append(svg("circle", { class: "halo", r: r + 8 }));
    g.append(svg("circle", { class: "disc", r, fill: COLOURS[statusClass(c)] }));
    if (c.gateways) g.append(svg("text", { class: "count", "text-anchor": "middle", dy: "0.35em" }, `${c.online}/${c.gateways}`));
    g.append(svg("text", { class: "name", "text-anchor": labels[i].anchor, x: labels[i].dx, y: labels[i].dy }, c.name));
    const badges = [[c.alarms, COLOURS.down, 1], [c.faulty_lamps, COLOURS.partial, -1]];
    for (const [n, colour, side] of badges) {
      if (!n) continue;
      const b = svg("g", { class: "badge", transform: `translate(${side * (r * 0.8)},${-r * 0.8})` });
      b.append(svg("circle", { r: 8, fill: colour }), svg("text", { "text-anchor": "middle", dy: "0.35em" }, String(n)));
      g.append(b);
    }
    g.addEventListener("click", () => go(`#/commune/${c.insee}`));
    map.append(g);
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

// -- summary -----------------------------------------------------------------------------------

function rows(tbody, items, cells, empty, onclick) {
  tbody.replaceChildren();
  if (!items.length) {
    tbody.append(el("tr", { class: "empty" }, el("td", { colspan: "9" }, empty)));
    return;
  }
  for (const item of items) {
    const tr = el("tr", onclick ? { class: "clickable", onclick: () => onclick(item) } : {});
    for (const c of cells(item)) tr.append(c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c));
    tbody.append(tr);
  }
}

function alarmPill(a) {
  const cls = a.status === "acknowledged" ? "ack" : a.severity;
  return el("span", { class: `pill ${cls}` }, ALARM_NAMES[a.code] || a.code);
}

function renderSummary(doc) {
  summary = doc;
  const t = doc.totals;
  document.getElementById("territory").textContent = `${doc.territory} — centre de contrôle`;
  document.getElementById("online-count").textContent = t.online;
  document.getElementById("gateway-count").textContent = t.gateways;
  document.getElementById("presence-source").textContent = doc.presence_source === "mqtt"
    ? "présence MQTT (état et dernière volonté)"
    : "d'après les envois de données (moins de 5 min)";
  document.getElementById("alarm-count").textContent = t.alarms;
  document.getElementById("fault-count").textContent = t.faulty_lamps;
  document.getElementById("report-count").textContent = t.open_reports;
  const today = document.getElementById("energy-today");
  today.textContent = kwh(t.energy_today_kwh);
  today.dataset.kwh = t.energy_today_kwh;
  const cmp = document.getElementById("energy-compare");
  cmp.replaceChildren(`jusqu'à ${t.energy_until} · `, ...[compare(t.energy_today_kwh, t.energy_last_week_kwh)].flat());
  cmp.dataset.kwh = t.energy_last_week_kwh;
  drawMap(doc.communes);
  rows(document.querySelector("#alarms tbody"), doc.alarms,
       (a) => [when(a.ts_ms), communeName(a.commune), a.gateway, a.device, el("td", {}, alarmPill(a))],
       "Aucune alarme ouverte", (a) => go(`#/cabinet/${encodeURIComponent(a.gateway)}`));
  rows(document.querySelector("#faults tbody"), doc.faulty_lamps,
       (f) => [when(f.since_ms), communeName(f.commune), f.gateway, f.device],
       "Aucune lampe en panne", (f) => go(`#/cabinet/${encodeURIComponent(f.gateway)}`));
  updates += 1;
  document.body.dataset.updates = updates;
  document.getElementById("updated").textContent = `dernière mise à jour ${new Date().toLocaleTimeString("fr-FR", { timeZone: TZ })}`;
}

// -- drill-down ----------------------------------------------------------------------------------

function crumbs(parts) {
  const nav = document.getElementById("crumbs");
  nav.replaceChildren();
  parts.forEach(([label, hash], i) => {
    if (i) nav.append(" › ");
    nav.append(hash ? el("a", { onclick: () => go(hash) }, label) : el("span", {}, label));
  });
}

function table(headers, numeric) {
  const thead = el("thead", {}, el("tr", {}, ...headers.map((h, i) => el("th", numeric.includes(i) ? { style: "text-align:right" } : {}, h))));
  const tbody = el("tbody");
  return [el("div", { class: "scroll" }, el("table", { class: "list" }, thead, tbody)), tbody];
}

const num = (text) => el("td", { class: "num" }, text);

function renderMetropolis() {
  crumbs([["Métropole", null]]);
  const detail = document.getElementById("detail");
  const [wrap, tbody] = table(["Commune", "En ligne", "Alarmes", "Pannes", "Aujourd'hui (kWh)", "Sem. dern."], [1, 2, 3, 4, 5]);
  const list = [...summary.communes].sort((a, b) => a.name.localeCompare(b.name, "fr"));
  rows(tbody, list, (c) => [c.name, num(`${c.online}/${c.gateways}`), num(c.alarms), num(c.faulty_lamps),
                            num(kwh(c.energy_today_kwh)), num(kwh(c.energy_last_week_kwh))],
       "", (c) => go(`#/commune/${c.insee}`));
  detail.replaceChildren(el("h3", {}, summary.territory), el("div", { class: "facts" },
    el("span", {}, el("b", {}, String(summary.communes.length)), " communes"),
    el("span", {}, el("b", {}, String(summary.totals.gateways)), " armoires")), wrap);
}

async function fetchJson(path) {
  const resp = await fetch(path, { headers: { Accept: "application/json" } });
  if (resp.status === 401) {  // served with --operator-login and the session ended: log in again
    location.assign(`/control/login?next=${encodeURIComponent(location.pathname + location.search + location.hash)}`);
  }
  if (!resp.ok) throw new Error(`${path}: ${resp.status}`);
  return resp.json();
}

function onlinePill(on) { return el("span", { class: `pill ${on ? "ok" : "down"}` }, on ? "en ligne" : "hors ligne"); }

async function renderCommune(insee) {
  const doc = await fetchJson(`/control/api/communes/${encodeURIComponent(insee)}`);
  const c = doc.commune;
  crumbs([["Métropole", "#/"], [c.name, null]]);
  const [wrap, tbody] = table(["Armoire", "État", "Dernier envoi", "Aujourd'hui (kWh)", "Sem. dern.", "Alarmes", "Pannes"], [3, 4, 5, 6]);
  rows(tbody, doc.cabinets, (g) => [g.cabinet ? `${g.name} (${g.cabinet})` : g.name, el("td", {}, onlinePill(g.online)),
                                    when(g.last_seen_ms), num(kwh(g.energy_today_kwh)), num(kwh(g.energy_last_week_kwh)),
                                    num(g.alarms), num(g.faulty_lamps)],
       "Aucune armoire dans cette commune", (g) => go(`#/cabinet/${encodeURIComponent(g.name)}`));
  const online = doc.cabinets.filter((g) => g.online).length;
  document.getElementById("detail").replaceChildren(
    el("h3", {}, c.name), el("div", { class: "facts" }, el("span", {}, "INSEE ", el("b", {}, c.insee)),
      el("span", {}, el("b", {}, `${online}/${doc.cabinets.length}`), " armoires en ligne"),
      el("span", {}, el("b", {}, String(doc.faulty_lamps.length)), " lampes en panne")), wrap);
}

function deviceState(d) {
  if (d.fault_since_ms != null) return el("span", { class: "pill down" }, "en panne");
  if (d.lamp_on === true) return el("span", { class: "pill ok" }, "allumée");
  if (d.lamp_on === false) return el("span", { class: "pill ack" }, "éteinte");
  return "";
}

async function renderCabinet(name) {
  const doc = await fetchJson(`/control/api/cabinets/${encodeURIComponent(name)}`);
  const g = doc.gateway;
  crumbs([["Métropole", "#/"], [g.commune_name, `#/commune/${g.commune}`], [g.name, null]]);
  const [devWrap, devBody] = table(["Équipement", "État", "Dernière mesure", "Compteur (kWh)", "Eau (m³)"], [3, 4]);
  rows(devBody, doc.devices, (d) => [d.device, el("td", {}, deviceState(d)), when(d.last_ts_ms),
                                     num(kwh(d.energy_wh / 1000)), num(number(d.volume_m3))],
       "Aucun équipement n'a encore envoyé de mesure");
  const [evWrap, evBody] = table(["Quand", "Équipement", "Événement", "Gravité"], []);
  rows(evBody, doc.events, (e) => [when(e.ts_ms), e.device, ALARM_NAMES[e.code] || e.code, e.severity], "Aucun événement");
  document.getElementById("detail").replaceChildren(
    el("h3", {}, g.cabinet ? `Armoire ${g.cabinet}` : `Armoire ${g.name}`),
    el("div", { class: "facts" }, el("span", {}, onlinePill(g.online)), el("span", {}, "passerelle ", el("b", {}, g.name)),
      el("span", {}, "dernier envoi ", el("b", {}, when(g.last_seen_ms))),
      el("span", {}, "aujourd'hui ", el("b", {}, `${kwh(doc.energy_today_kwh)} kWh`))),
    devWrap, el("h2", { style: "margin-top:14px" }, "Derniers événements"), evWrap);
}

async function route() {
  if (!summary) return;
  const [, kind, key] = location.hash.match(/^#\/(commune|cabinet)\/(.+)$/) || [];
  try {
    if (kind === "commune") await renderCommune(decodeURIComponent(key));
    else if (kind === "cabinet") await renderCabinet(decodeURIComponent(key));
    else renderMetropolis();
  } catch (err) {
    document.getElementById("detail").replaceChildren(el("p", {}, `Impossible d'afficher cette page : ${err.message}`));
  }
  drawMap(summary.communes);
}

// -- live ----------------------------------------------------------------------------------------

function setLive(state, text) {
  const live = document.getElementById("live");
  live.dataset.state = state;
  document.getElementById("live-text").textContent = text;
}

function connect() {
  const source = new EventSource("/control/api/stream");
  source.addEventListener("open", () => setLive("open", "En direct"));
  source.addEventListener("error", () => setLive("error", "Reconnexion…"));
  source.addEventListener("summary", (e) => {
    renderSummary(JSON.parse(e.data));
    route();
  });
}

window.addEventListener("hashchange", route);
fetchJson("/control/api/summary").then((doc) => { renderSummary(doc); route(); }).catch(() => setLive("error", "Collecteur injoignable"));
connect();
