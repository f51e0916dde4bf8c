// map.js: the map of every asset (route "#/map", and CG.widgets.map for the overview).
// Data: /control/api/map/config, /layers (columns: the lamps in pages of one snapshot, 10,000 lamps a
// page by default: the first tells the total and the stamp, the others are asked at once and put together)
// and /states?since=STAMP (only what changed) on the shell's "summary" and "change" events. Leaflet with a canvas renderer:
// cabinets are clustered markers whose look tells their lamps' worst state; each lamp is drawn on the
// canvas from LAMP_ZOOM, where a view holds a few hundred of them. Each state has its colour AND its
// shape (the legend shows both): on ●, dimmed ◐, off ○, failed ▲, unreachable ■ (never "off").
"use strict";

(() => {
  const LAMP_ZOOM = 15;  // each lamp drawn from this zoom (a street); below, the cabinets tell
  const MAX_DRAWN = 6000;  // lamps drawn at once at most (a view that holds more asks to zoom in)
  const GRID = 200;  // lamps indexed in cells of 1/200 degree (about 550 m x 380 m here)
  const REFRESH_GAP_MS = 1000;
  const STATES = ["O", "D", "X", "F", "U"];
  const STATE_KEY = { O: "on", D: "dimmed", X: "off", F: "failed", U: "unreachable" };
  const COLOURS = { O: "#f0b400", D: "#b07800", X: "#4a5560", F: "#c8102e", U: "#6b3fa0", ovr: "#0060df" };
  const LAYERS = ["cabinets", "lamps", "junctions", "cameras", "parking", "vehicles"];
  const ON_BY_DEFAULT = new Set(["cabinets", "lamps", "junctions"]);
  // lamps a page (the server's default when unset); tests make it small to see the metropolis in pages
  const LAMP_PAGE = Number(window.CG_MAP_LAMP_PAGE) || 0;
  const LAMPS_URL = "/control/api/map/layers?layers=lamps";

  CG.strings({
    fr: {
      "map.title": "Carte",
      "map.layers": "Couches",
      "map.layer.cabinets": "Armoires",
      "map.layer.lamps": "Points lumineux",
      "map.layer.junctions": "Carrefours",
      "map.layer.cameras": "Caméras",
      "map.layer.parking": "Stationnement",
      "map.layer.vehicles": "Véhicules",
      "map.legend": "Légende",
      "map.state.on": "Allumé",
      "map.state.dimmed": "Abaissé",
      "map.state.off": "Éteint",
      "map.state.failed": "En panne",
      "map.state.unreachable": "Injoignable",
      "map.state.overridden": "Forçage en cours",
      "map.cabinet.ok": "Armoire en ligne",
      "map.cabinet.offline": "Armoire hors ligne",
      "map.cabinet.failed": "Armoire avec un point en panne",
      "map.cabinet.unreachable": "Armoire avec un point injoignable",
      "map.why.gateway_offline": "passerelle hors ligne",
      "map.why.communication_lost": "communication perdue",
      "map.why.stale": "aucune lecture récente",
      "map.why.never_read": "jamais lu",
      "map.zoom": "Zoomez pour voir chaque point lumineux.",
      "map.loading": "Chargement de la carte…",
      "map.lamp": "{cabinet} / {device} — {state}",
      "map.level": "{level} %",
      "map.source.config": "position de la configuration",
      "map.source.import": "position importée",
      "map.source.cabinet": "à la position de son armoire",
      "map.cabinet": "Armoire {name} — {status} — {lamps} points",
      "map.junction": "Carrefour {id}",
      "map.camera": "Caméra {device} — {location}",
      "map.parking": "{name} — {free} places libres sur {total}",
      "map.vehicle": "Véhicule {name} ({service})",
      "map.count": "{n} points lumineux",
      "map.unplaced": "{n} sans position",
      "map.notiles": "Fond de carte non configuré (CITYGATE_TILE_URL) : communes et équipements seuls.",
    },
    en: {
      "map.title": "Map",
      "map.layers": "Layers",
      "map.layer.cabinets": "Cabinets",
      "map.layer.lamps": "Lamps",
      "map.layer.junctions": "Junctions",
      "map.layer.cameras": "Cameras",
      "map.layer.parking": "Parking",
      "map.layer.vehicles": "Vehicles",
      "map.legend": "Legend",
      "map.state.on": "On",
      "map.state.dimmed": "Dimmed",
      "map.state.off": "Off",
      "map.state.failed": "Failed",
      "map.state.unreachable": "Unreachable",
      "map.state.overridden": "Overridden",
      "map.cabinet.ok": "Cabinet online",
      "map.cabinet.offline": "Cabinet offline",
      "map.cabinet.failed": "Cabinet with a failed lamp",
      "map.cabinet.unreachable": "Cabinet with an unreachable lamp",
      "map.why.gateway_offline": "gateway offline",
      "map.why.communication_lost": "communication lost",
      "map.why.stale": "no recent reading",
      "map.why.never_read": "never read",
      "map.zoom": "Zoom in to see each lamp.",
      "map.loading": "Loading the map…",
      "map.lamp": "{cabinet} / {device} — {state}",
      "map.level": "{level} %",
      "map.source.config": "position from the config",
      "map.source.import": "imported position",
      "map.source.cabinet": "at its cabinet's position",
      "map.cabinet": "Cabinet {name} — {status} — {lamps} lamps",
      "map.junction": "Junction {id}",
      "map.camera": "Camera {device} — {location}",
      "map.parking": "{name} — {free} free spaces of {total}",
      "map.vehicle": "Vehicle {name} ({service})",
      "map.count": "{n} lamps",
      "map.unplaced": "{n} without a position",
      "map.notiles": "No base map configured (CITYGATE_TILE_URL): communes and assets only.",
    },
  });

  // -- what the page knows, kept between visits of the route ----------------------------------------

  let active = null;  // the mounted view's map and drawn lamps, for CG.mapDebug
  const data = { config: null, doc: null, stamp: null, layout: null, state: "", level: [], ovr: new Set(), why: {}, online: "", grid: null };
  const shown = new Set(ON_BY_DEFAULT);

  function takeStates(s) {
    data.stamp = s.stamp;
    data.layout = s.layout;
    if (s.full) {
      if (s.lamps) {  // the cabinets' layers come without the lamps' states: those come with the lamps
        data.state = s.lamps.state.split("");
        data.level = s.lamps.level.slice();
        data.ovr = new Set(s.lamps.overridden);
        data.why = { ...s.lamps.why };
      }
      data.online = s.cabinets.online.split("");
      data.cabStatus = s.cabinets.status.split("");
      return null;
    }
    const touched = new Set();
    for (const [i, st, level, ovr, why] of s.lamps.changed) {
      data.state[i] = st;
      data.level[i] = level;
      if (ovr) data.ovr.add(i); else data.ovr.delete(i);
      if (why) data.why[i] = why; else delete data.why[i];
      touched.add(i);
    }
    for (const [i, online, status] of s.cabinets.changed) {
      data.online[i] = online ? "1" : "0";
      data.cabStatus[i] = status;
    }
    return { lamps: touched, cabinets: s.cabinets.changed.map(([i]) => i) };
  }

  function indexLamps() {
    const lamps = data.doc.lamps;
    const grid = new Map();
    if (lamps) {
      for (let i = 0; i < lamps.device.length; i++) {
        const key = `${Math.floor(lamps.lat[i] * GRID)}:${Math.floor(lamps.lon[i] * GRID)}`;
        let cell = grid.get(key);
        if (!cell) grid.set(key, (cell = []));
        cell.push(i);
      }
    }
    data.grid = grid;
  }

  let lampsOnTheirWay = null;

  /** Every lamp of one snapshot and their states: the first page, then the others at once (by the first
   * one's stamp), put together as one answer. A snapshot the server let go meanwhile (410): again. */
  async function allLamps() {
    for (let attempt = 1; ; attempt++) {
      const first = await CG.api(LAMP_PAGE ? `${LAMPS_URL}&limit=${LAMP_PAGE}` : LAMPS_URL);
      const asks = [];
      for (let off = first.offset + first.limit; off < first.total; off += first.limit) {
        asks.push(CG.api(`${LAMPS_URL}&limit=${first.limit}&offset=${off}&stamp=${first.stamp}`));
      }
      try {
        const rest = await Promise.all(asks);
        const lamps = first.lamps;
        const st = first.states.lamps;
        for (const page of rest) {
          for (const col of ["cabinet", "device", "lat", "lon", "level"]) {
            const into = col === "level" ? st.level : lamps[col];
            for (const v of (col === "level" ? page.states.lamps.level : page.lamps[col])) into.push(v);
          }
          lamps.positionSource += page.lamps.positionSource;
          st.state += page.states.lamps.state;
          for (const i of page.states.lamps.overridden) st.overridden.push(i);
          Object.assign(st.why, page.states.lamps.why);
        }
        performance.mark("cg-map-lamp-pages");
        return first;
      } catch (err) {
        if (err.status !== 410 || attempt >= 5) throw err;
      }
    }
  }

  /** The cabinets and small layers, and (in parallel, bigger, needed from street zoom only) the lamps. */
  async function load() {
    lampsOnTheirWay = allLamps();
    lampsOnTheirWay.catch(() => null);  // awaited by lampsArrived
    const [config, doc] = await Promise.all([data.config || CG.api("/control/api/map/config"),
      CG.api(`/control/api/map/layers?layers=${LAYERS.filter((l) => l !== "lamps").join(",")}`)]);
    performance.mark("cg-map-data");
    data.config = config;
    data.doc = doc;
    takeStates(doc.states);
    indexLamps();
  }

  /** The lamps' positions and states once here; false if they belong to another layout than the page's
   * (ask again). The page goes on from the lamps' snapshot (its deltas wait for it), the cabinets' states
   * with them. */
  async function lampsArrived() {
    const doc = await lampsOnTheirWay;
    if (doc.layout !== data.layout) return false;
    data.doc.lamps = doc.lamps;
    const other = doc.states.stamp !== data.stamp;
    takeStates(doc.states);
    indexLamps();
    performance.mark("cg-map-lamps");
    return other ? "other" : "same";
  }

  // opened on the map: its data is asked for while the page's other scripts still load
  let early = /^#\/map(\/|$)/.test(location.hash) ? load().catch(() => null) : null;

  // -- drawing -------------------------------------------------------------------------------------

  /** The shape of a state, drawn on a canvas context at (x, y), radius r. */
  function drawShape(ctx, st, x, y, r, overridden) {
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = st === "X" ? COLOURS.X : "#1b1b1b";
    ctx.fillStyle = COLOURS[st];
    ctx.beginPath();
    if (st === "F") {  // triangle
      ctx.moveTo(x, y - r * 1.25);
      ctx.lineTo(x + r * 1.15, y + r * 0.85);
      ctx.lineTo(x - r * 1.15, y + r * 0.85);
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
    } else if (st === "U") {  // square
      ctx.rect(x - r, y - r, 2 * r, 2 * r);
      ctx.fill();
      ctx.stroke();
    } else if (st === "X") {  // hollow circle
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fillStyle = "#ffffff";
      ctx.fill();
      ctx.stroke();
    } else if (st === "D") {  // circle, left half filled
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fillStyle = "#ffffff";
      ctx.fill();
      ctx.beginPath();
      ctx.arc(x, y, r, Math.PI / 2, Math.PI * 1.5);
      ctx.closePath();
      ctx.fillStyle = COLOURS.D;
      ctx.fill();
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.stroke();
    } else {  // on: filled circle
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }
    if (overridden) {
      ctx.beginPath();
      ctx.arc(x, y, r + 4, 0, 2 * Math.PI);
      ctx.lineWidth = 2;
      ctx.strokeStyle = COLOURS.ovr;
      ctx.stroke();
    }
  }

  /** A lamp on Leaflet's canvas renderer: a CircleMarker (its hit test, its events) drawn in its state's shape. */
  const LampMarker = L.CircleMarker.extend({
    _updatePath() {
      const r = this._renderer;
      if (!r._drawing || this._empty()) return;
      drawShape(r._ctx, this.options.cgState, this._point.x, this._point.y, this._radius, this.options.cgOverridden);
    },
  });

  function legendIcon(st, overridden) {
    const c = document.createElement("canvas");
    c.width = c.height = 24;
    c.setAttribute("aria-hidden", "true");
    drawShape(c.getContext("2d"), st, 12, 12, 6, overridden);
    return c;
  }

  const CAB_STATUS = { o: "ok", x: "offline", f: "failed", u: "unreachable" };

  /** The server's word: offline, else a failed lamp, else an unreachable one, else ok. */
  function cabinetStatus(i) {
    return CAB_STATUS[data.cabStatus[i]] || "ok";
  }

  const CAB_GLYPH = { ok: "", offline: "✕", failed: "!", unreachable: "?" };
  const RANK = { ok: 0, unreachable: 1, failed: 2, offline: 3 };

  function cabinetIcon(status) {
    return L.divIcon({ className: "", html: `<span class="cg-cab cg-cab-${status}">${CAB_GLYPH[status]}</span>`, iconSize: [22, 22], iconAnchor: [11, 11] });
  }

  function lampLabel(i) {
    const lamps = data.doc.lamps;
    const st = data.state[i];
    let text = CG.t("map.lamp", { cabinet: data.doc.cabinets.name[lamps.cabinet[i]], device: lamps.device[i], state: CG.t(`map.state.${STATE_KEY[st]}`) });
    if (data.level[i] >= 0 && st !== "U") text += ` · ${CG.t("map.level", { level: data.level[i] })}`;
    if (data.why[i]) text += ` · ${CG.t(`map.why.${data.why[i]}`)}`;
    if (data.ovr.has(i)) text += ` · ${CG.t("map.state.overridden")}`;
    const src = lamps.positionSources[lamps.positionSource[i]];
    return `${text} · ${CG.t(`map.source.${src}`)}`;
  }

  // -- the view ------------------------------------------------------------------------------------

  function mount(root, opts) {
    const compact = Boolean(opts && opts.compact);
    const { el } = CG;
    const status = el("p", { class: "map-status", role: "status" }, CG.t("map.loading"));
    const box = el("div", { class: "map-canvas", id: `cg-map-${Date.now()}`, role: "region", "aria-label": CG.t("map.title") });
    const layerList = el("fieldset", { class: "map-layers" }, el("legend", { class: "visually-hidden" }, CG.t("map.layers")));
    const legend = el("div", { class: "map-legend" });
    const wide = !compact && window.innerWidth > 760;  // on a phone both fold away: the map comes first
    const panel = el("div", { class: "map-panel" },
      el("details", { class: "map-box", open: wide }, el("summary", {}, CG.t("map.layers")), layerList),
      el("details", { class: "map-box", open: wide }, el("summary", {}, CG.t("map.legend")), legend), status);
    const section = el("section", { class: `map-view${compact ? " compact" : ""}`, "aria-labelledby": "map-title" },
      el("h2", { id: "map-title", class: compact ? "visually-hidden" : "" }, CG.t("map.title")), panel, box);
    root.append(section);

    let map = null;
    let stopped = false;
    let timer = null;
    let focused = false;
    const drawn = new Map();  // lamp index -> marker
    const cabMarkers = [];
    const groups = {};
    const offs = [];

    function counts() {
      const n = { O: 0, D: 0, X: 0, F: 0, U: 0, ovr: data.ovr.size };
      for (const st of data.state) n[st] += 1;
      return n;
    }

    function showLegend() {
      const n = counts();
      const num = (k) => (data.doc.lamps ? CG.fmtNum(n[k]) : "…");  // the lamps' states come with the lamps
      const rows = STATES.map((st) => el("li", {}, legendIcon(st, false), el("span", {}, CG.t(`map.state.${STATE_KEY[st]}`)), el("span", { class: "n" }, num(st))));
      rows.push(el("li", {}, legendIcon("O", true), el("span", {}, CG.t("map.state.overridden")), el("span", { class: "n" }, num("ovr"))));
      const cabs = ["ok", "unreachable", "failed", "offline"].map((s) => el("li", {}, el("span", { class: `cg-cab cg-cab-${s}`, "aria-hidden": "true" }, CAB_GLYPH[s]), el("span", {}, CG.t(`map.cabinet.${s}`))));
      legend.replaceChildren(el("ul", { class: "map-legend-lamps" }, rows), el("ul", { class: "map-legend-cabs" }, cabs));
    }

    function showStatus() {
      let text = data.doc.lamps ? CG.t("map.count", { n: CG.fmtNum(data.state.length) }) : CG.t("map.loading");
      if (data.doc.lamps && data.doc.lamps.unplaced) text += ` · ${CG.t("map.unplaced", { n: CG.fmtNum(data.doc.lamps.unplaced) })}`;
      if (shown.has("lamps") && map && map.getZoom() < LAMP_ZOOM) text += ` · ${CG.t("map.zoom")}`;
      if (!data.config.tile_url) text += ` · ${CG.t("map.notiles")}`;
      status.textContent = text;
    }

    function layerToggles() {
      const boxes = LAYERS.map((name) => {
        const id = `${box.id}-${name}`;
        const input = el("input", { type: "checkbox", id, checked: shown.has(name), "data-layer": name });
        input.addEventListener("change", () => {
          if (input.checked) shown.add(name); else shown.delete(name);
          apply();
        });
        return el("label", { for: id, class: "map-toggle" }, input, CG.t(`map.layer.${name}`));
      });
      layerList.append(...boxes);
    }

    function drawLamps() {
      const lampsOn = shown.has("lamps") && map.getZoom() >= LAMP_ZOOM && Boolean(data.doc.lamps);
      const want = new Set();
      if (lampsOn) {
        const b = map.getBounds().pad(0.2);
        const [y0, y1] = [Math.floor(b.getSouth() * GRID), Math.floor(b.getNorth() * GRID)];
        const [x0, x1] = [Math.floor(b.getWest() * GRID), Math.floor(b.getEast() * GRID)];
        const lamps = data.doc.lamps;
        for (let y = y0; y <= y1 && want.size < MAX_DRAWN; y++) {
          for (let x = x0; x <= x1; x++) {
            for (const i of data.grid.get(`${y}:${x}`) || []) {
              if (b.contains([lamps.lat[i], lamps.lon[i]])) want.add(i);
            }
          }
        }
      }
      for (const [i, m] of drawn) {
        if (!want.has(i)) { groups.lamps.removeLayer(m); drawn.delete(i); }
      }
      const lamps = data.doc.lamps;
      for (const i of want) {
        if (drawn.has(i)) continue;
        const m = new LampMarker([lamps.lat[i], lamps.lon[i]], { radius: 6, cgState: data.state[i], cgOverridden: data.ovr.has(i), cgIndex: i });
        m.bindTooltip(() => lampLabel(i), { direction: "top" });
        m.on("click", () => CG.go(`#/lamp/${encodeURIComponent(data.doc.cabinets.name[lamps.cabinet[i]])}/${encodeURIComponent(lamps.device[i])}`));
        groups.lamps.addLayer(m);
        drawn.set(i, m);
      }
      showStatus();
    }

    function cabinetTitle(i, status) {
      return CG.t("map.cabinet", { name: data.doc.cabinets.name[i], status: CG.t(`map.cabinet.${status}`), lamps: CG.fmtNum(data.doc.cabinets.lamps[i]) });
    }

    function buildCabinets() {
      const cabs = data.doc.cabinets;
      groups.cabinets = L.markerClusterGroup({
        chunkedLoading: true, maxClusterRadius: 45, disableClusteringAtZoom: LAMP_ZOOM, showCoverageOnHover: false,
        iconCreateFunction(cluster) {
          let worst = "ok";
          for (const m of cluster.getAllChildMarkers()) if (RANK[m.options.cgStatus] > RANK[worst]) worst = m.options.cgStatus;
          const n = cluster.getChildCount();
          return L.divIcon({ className: "", html: `<span class="cg-cluster cg-cab-${worst}">${n}${CAB_GLYPH[worst] ? ` ${CAB_GLYPH[worst]}` : ""}</span>`, iconSize: [40, 40] });
        },
      });
      const markers = [];
      for (let i = 0; i < cabs.name.length; i++) {
        if (cabs.lat[i] === null || cabs.lon[i] === null) continue;
        const st = cabinetStatus(i);
        const m = L.marker([cabs.lat[i], cabs.lon[i]], { icon: cabinetIcon(st), title: cabinetTitle(i, st), alt: cabs.name[i], keyboard: true, cgStatus: st, cgIndex: i });
        m.on("click", () => CG.go(`#/cabinet/${encodeURIComponent(cabs.name[i])}`));
        markers.push(m);
        cabMarkers[i] = m;
      }
      groups.cabinets.addLayers(markers);
    }

    function point(lat, lon, cls, label, href) {
      const m = L.circleMarker([lat, lon], { radius: 7, className: cls, color: "#1b1b1b", weight: 1.5, fillOpacity: 0.9 });
      m.bindTooltip(label);
      if (href) m.on("click", () => CG.go(href));
      return m;
    }

    function buildOthers() {
      const d = data.doc;
      groups.junctions = L.layerGroup((d.junctions || []).map((j) => point(j.lat, j.lon, "cg-junction", CG.t("map.junction", { id: j.id }), `#/junction/${encodeURIComponent(j.id)}`)));
      groups.cameras = L.layerGroup((d.cameras || []).map((c) => point(c.lat, c.lon, "cg-camera", CG.t("map.camera", { device: c.device, location: c.location }))));
      groups.parking = L.layerGroup((d.parking || []).map((p) => {
        const total = Object.values(p.spaces).reduce((a, b) => a + b, 0);
        return point(p.lat, p.lon, "cg-parking", CG.t("map.parking", { name: p.name, free: CG.fmtNum(p.spaces.free || 0), total: CG.fmtNum(total) }));
      }));
      groups.vehicles = L.layerGroup((d.vehicles || []).map((v) => point(v.lat, v.lon, "cg-vehicle", CG.t("map.vehicle", { name: v.name, service: v.service }))));
      groups.lamps = L.layerGroup();
      groups.communes = L.layerGroup(data.config.communes.map((c) => L.circleMarker([c.lat, c.lon], { radius: 3, color: "#5b6770", weight: 1, fillOpacity: 0.6, interactive: false })
        .bindTooltip(c.name, { permanent: true, direction: "right", className: "cg-commune", interactive: false })));
    }

    function apply() {
      for (const name of LAYERS) {
        const g = groups[name];
        if (!g) continue;
        if (shown.has(name) && !map.hasLayer(g)) map.addLayer(g);
        if (!shown.has(name) && map.hasLayer(g)) map.removeLayer(g);
      }
      drawLamps();
    }

    function restyle(changed) {
      for (const i of changed.lamps) {
        const m = drawn.get(i);
        if (!m) continue;
        m.options.cgState = data.state[i];
        m.options.cgOverridden = data.ovr.has(i);
        m.redraw();
      }
      const moved = [];
      for (const i of changed.cabinets) {
        const m = cabMarkers[i];
        if (!m) continue;
        const st = cabinetStatus(i);
        if (st === m.options.cgStatus) continue;
        m.options.cgStatus = st;
        m.options.title = cabinetTitle(i, st);
        m.setIcon(cabinetIcon(st));
        moved.push(m);
      }
      if (moved.length) groups.cabinets.refreshClusters(moved);  // only the clusters above these
      showLegend();
    }

    async function refresh() {
      timer = null;
      if (stopped || data.stamp === null) return;
      if (!data.doc.lamps) {  // a delta goes on from the lamps' snapshot: wait for it
        schedule();
        return;
      }
      try {
        const s = await CG.api(`/control/api/map/states?since=${data.stamp}`);
        if (stopped) return;
        if (s.layout !== data.layout) {
          await reload();
          return;
        }
        const changed = takeStates(s);
        if (changed === null) rebuild(); else restyle(changed);
      } catch (err) {
        console.error(err);
      }
    }

    /** Everything again (the layout changed): the cabinets, then the lamps. */
    async function reload() {
      await load();
      if (stopped) return;
      focusCabinet();
      rebuild();
      await withLamps();
    }

    async function withLamps() {
      const arrived = await lampsArrived();
      if (stopped) return;
      if (!arrived) await reload();
      else if (arrived === "other") rebuild();  // the cabinets' looks too
      else {
        drawLamps();
        showLegend();
      }
    }

    function schedule() {
      if (timer === null && !stopped) timer = setTimeout(refresh, REFRESH_GAP_MS);
    }

    function rebuild() {
      for (const name of [...LAYERS, "communes"]) if (groups[name] && map.hasLayer(groups[name])) map.removeLayer(groups[name]);
      drawn.clear();
      cabMarkers.length = 0;
      buildCabinets();
      performance.mark("cg-map-cabinets");
      buildOthers();
      if (!data.config.tile_url) groups.communes.addTo(map);
      apply();
      showLegend();
    }

    /** On the cabinet of "#/map/<gateway>" (once it is known: a cabinet just added comes with a later layout). */
    function focusCabinet() {
      const cabs = data.doc.cabinets;
      const focus = opts && opts.focus && !focused ? cabs.name.indexOf(opts.focus) : -1;
      if (focus < 0 || cabs.lat[focus] === null) return false;
      focused = true;
      map.setView([cabs.lat[focus], cabs.lon[focus]], 17);
      return true;
    }

    function initialView() {
      if (focusCabinet()) return;
      const cabs = data.doc.cabinets;
      const pts = [];
      for (let i = 0; i < cabs.name.length; i++) if (cabs.lat[i] !== null && cabs.lon[i] !== null) pts.push([cabs.lat[i], cabs.lon[i]]);
      const all = pts.length ? pts : data.config.communes.map((c) => [c.lat, c.lon]);
      if (all.length) map.fitBounds(L.latLngBounds(all).pad(0.05), { maxZoom: 16 });
      else map.setView([47.322, 5.041], 12);
    }

    (async () => {
      try {
        if (early) await early;
        early = null;
        if (!data.doc || !lampsOnTheirWay) await load();
        if (stopped) return;
        layerToggles();
        map = L.map(box, { preferCanvas: true, zoomSnap: 1, minZoom: 3, maxZoom: 19, renderer: L.canvas({ padding: 0.3, tolerance: 4 }) });
        if (data.config.tile_url) {
          L.tileLayer(data.config.tile_url, { maxZoom: 19, attribution: data.config.tile_attribution || "" }).addTo(map);
        } else {
          box.classList.add("no-tiles");
        }
        initialView();
        rebuild();
        map.on("moveend", drawLamps);
        offs.push(CG.on("summary", schedule), CG.on("change", schedule));
        if (!data.doc.lamps) withLamps().catch((err) => console.error(err));
        active = { map, drawn, box };
        section.dataset.ready = "true";
        requestAnimationFrame(() => performance.mark("cg-map-rendered"));  // bench/bench_map_page.py: first render
        schedule();  // what changed while the layers were on their way
      } catch (err) {
        status.textContent = CG.t("shell.error", { detail: err.detail || err.message });
        status.setAttribute("role", "alert");
      }
    })();

    return () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      for (const off of offs) off();
      if (map) map.remove();
      if (active && active.map === map) active = null;
    };
  }

  CG.route("map", (el, args) => mount(el, { focus: args[0] }));
  CG.widgets.map = (el, opts) => mount(el, { compact: true, ...(opts || {}) });
  /** for tests and the benchmark: what the map holds (counts by state, lamps drawn) */
  CG.mapDebug = {
    stamp: () => data.stamp,
    drawn: () => (active ? active.drawn.size : 0),
    /** [lamps placed, lamp states held] (every page put together) */
    lamps: () => [data.doc && data.doc.lamps ? data.doc.lamps.device.length : 0, data.state.length],
    /** a lamp's state letter and, when drawn, where it is on the page */
    lamp(gateway, device) {
      if (!data.doc || !data.doc.lamps) return null;
      const cab = data.doc.cabinets.name.indexOf(gateway);
      const lamps = data.doc.lamps;
      let i = -1;
      for (let j = 0; j < lamps.device.length; j++) if (lamps.cabinet[j] === cab && lamps.device[j] === device) { i = j; break; }
      if (i < 0) return null;
      const out = { state: data.state[i], level: data.level[i], overridden: data.ovr.has(i), why: data.why[i] || null, drawn: Boolean(active && active.drawn.has(i)) };
      if (out.drawn) {
        const p = active.map.latLngToContainerPoint([lamps.lat[i], lamps.lon[i]]);
        const r = active.box.getBoundingClientRect();
        Object.assign(out, { x: r.left + p.x, y: r.top + p.y });
      }
      return out;
    },
  };
})();
