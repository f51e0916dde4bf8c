// Control-centre page, "Caméras" panel: the health of the video-surveillance cameras per commune, and each
// camera that is not well (dark cabinet, unreachable, or an open fault) with its cabinet, place, faults,
// firmware and clock drift, from /api/v1/cameras (collector/cameras/routes.py), refreshed every 30 s.
// Health only: no image, no stream, ever. Text only, never HTML.
"use strict";

(() => {
  const REFRESH_MS = 30_000;
  const FAULTS = {
    camera_unreachable: "injoignable", cameras_dark: "armoire éteinte", camera_stream_unavailable: "flux refusé",
    camera_stream_changed: "flux modifié", camera_clock_drift: "horloge décalée", camera_onvif_failure: "ONVIF en erreur",
    camera_tampering: "sabotage", camera_scene_change: "scène changée", camera_defocus: "flou",
    camera_video_loss: "perte vidéo", camera_storage_failure: "stockage en panne",
  };
  const STATUS = { ok: ["ok", "en service"], faulty: ["major", "en défaut"], unreachable: ["down", "injoignable"],
    dark: ["critical", "armoire éteinte"] };
  const node = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const since = (ms) => new Date(ms).toLocaleString("fr-FR", { timeZone: "Europe/Paris", day: "2-digit",
    month: "2-digit", hour: "2-digit", minute: "2-digit" });

  const card = node("section", "card cameras-card");
  card.id = "cameras";
  const head = node("div", "card-head");
  const totals = node("span", "note", "");
  head.append(node("h2", "", "Caméras"), totals);
  const table = node("table", "list");
  const tr = node("tr");
  for (const label of ["État", "Armoire", "Caméra", "Défauts", "Micrologiciel", "Horloge"]) tr.append(node("th", "", label));
  table.append(node("thead"), node("tbody"));
  table.tHead.append(tr);
  const scroller = node("div");
  scroller.style.overflowX = "auto"; // a narrow screen scrolls the table, not the page
  scroller.tabIndex = 0; // and a keyboard can scroll it too
  scroller.append(table);
  card.style.gridColumn = "1 / -1"; // the whole width: six columns of text
  card.append(head, scroller);
  CG.panel(card); // the overview shows it below its own cards

  function faultText(f) {
    const name = FAULTS[f.code] || f.code;
    if (f.rtsp_status) return `${name} (RTSP ${f.rtsp_status})`;
    if (f.code === "camera_clock_drift" && f.drift_s !== undefined) return `${name} (${f.drift_s} s)`;
    return name;
  }

  function render(doc) {
    const counts = { ok: 0, faulty: 0, unreachable: 0, dark: 0 };
    for (const c of doc.communes) for (const k of Object.keys(counts)) counts[k] += c[k];
    const total = doc.cameras.length;
    totals.textContent = total ? `${counts.ok} / ${total} en service · ${counts.faulty} en défaut · `
      + `${counts.unreachable + counts.dark} injoignables` : "";
    const body = table.tBodies[0];
    body.replaceChildren();
    const ill = doc.cameras.filter((c) => c.status !== "ok");
    if (!ill.length) {
      const row = node("tr", "empty");
      const td = node("td", "", total ? "toutes les caméras sont en service" : "aucune caméra connue");
      td.colSpan = 6;
      row.append(td);
      body.append(row);
      return;
    }
    for (const c of ill) {
      const row = node("tr");
      const [cls, label] = STATUS[c.status] || ["ack", c.status];
      const state = node("td");
      state.append(node("span", `pill ${cls}`, label));
      const cam = node("td", "", c.device);
      if (c.location) cam.title = c.location.text;
      const faults = c.faults.map(faultText).join(", ");
      const first = c.faults.length ? ` depuis ${since(c.faults[0].since_ms)}` : "";
      const drift = c.clock_drift_s === null || c.clock_drift_s === undefined ? "—" : `${c.clock_drift_s} s`;
      const cabinet = node("td", "", c.gateway);
      if (c.cabinet) cabinet.title = `armoire ${c.cabinet}`;
      row.append(state, cabinet, cam, node("td", "", faults ? faults + first : "—"),
        node("td", "", c.firmware || "—"), node("td", "num", drift));
      body.append(row);
    }
  }

  async function refresh() {
    try {
      const resp = await fetch("/api/v1/cameras", { headers: { Accept: "application/json" } });
      if (resp.ok) render(await resp.json());
    } catch (_) {
      // the page's live indicator already says when the collector is unreachable
    }
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
