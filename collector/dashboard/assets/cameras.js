// Control-centre page, "Caméras" panel of the overview: the health of the video-surveillance cameras per commune,
// and each camera that is not well (dark cabinet, unreachable, or an open fault) with its cabinet, place, faults,
// firmware and clock drift, from /api/v1/cameras (collector/cameras/routes.py), refreshed every 30 s.
// Health only: no image, no stream, ever. Text only, never HTML.
"use strict";

(() => {
  const REFRESH_MS = 30_000;
  const { el } = CG;
  const t = (key, vars) => CG.t(key, vars);
  const FAULTS = ["camera_unreachable", "cameras_dark", "camera_stream_unavailable", "camera_stream_changed",
    "camera_clock_drift", "camera_onvif_failure", "camera_tampering", "camera_scene_change", "camera_defocus",
    "camera_video_loss", "camera_storage_failure"];
  const STATUS = { ok: "ok", faulty: "major", unreachable: "down", dark: "critical" };
  CG.strings({
    fr: {
      "cameras.title": "Caméras", "cameras.col.state": "État", "cameras.col.cabinet": "Armoire", "cameras.col.camera": "Caméra",
      "cameras.col.faults": "Défauts", "cameras.col.firmware": "Micrologiciel", "cameras.col.clock": "Horloge",
      "cameras.status.ok": "en service", "cameras.status.faulty": "en défaut", "cameras.status.unreachable": "injoignable",
      "cameras.status.dark": "armoire éteinte", "cameras.totals": "{ok} / {total} en service · {faulty} en défaut · {unreachable} injoignables",
      "cameras.all_ok": "toutes les caméras sont en service", "cameras.none": "aucune caméra connue",
      "cameras.since": " depuis {time}", "cameras.cabinet": "armoire {name}",
      "cameras.fault.camera_unreachable": "injoignable", "cameras.fault.cameras_dark": "armoire éteinte",
      "cameras.fault.camera_stream_unavailable": "flux refusé", "cameras.fault.camera_stream_changed": "flux modifié",
      "cameras.fault.camera_clock_drift": "horloge décalée", "cameras.fault.camera_onvif_failure": "ONVIF en erreur",
      "cameras.fault.camera_tampering": "sabotage", "cameras.fault.camera_scene_change": "scène changée",
      "cameras.fault.camera_defocus": "flou", "cameras.fault.camera_video_loss": "perte vidéo",
      "cameras.fault.camera_storage_failure": "stockage en panne",
    },
    en: {
      "cameras.title": "Cameras", "cameras.col.state": "State", "cameras.col.cabinet": "Cabinet", "cameras.col.camera": "Camera",
      "cameras.col.faults": "Faults", "cameras.col.firmware": "Firmware", "cameras.col.clock": "Clock",
      "cameras.status.ok": "in service", "cameras.status.faulty": "faulty", "cameras.status.unreachable": "unreachable",
      "cameras.status.dark": "cabinet dark", "cameras.totals": "{ok} / {total} in service · {faulty} faulty · {unreachable} unreachable",
      "cameras.all_ok": "every camera is in service", "cameras.none": "no camera known",
      "cameras.since": " since {time}", "cameras.cabinet": "cabinet {name}",
      "cameras.fault.camera_unreachable": "unreachable", "cameras.fault.cameras_dark": "cabinet dark",
      "cameras.fault.camera_stream_unavailable": "stream refused", "cameras.fault.camera_stream_changed": "stream changed",
      "cameras.fault.camera_clock_drift": "clock drift", "cameras.fault.camera_onvif_failure": "ONVIF error",
      "cameras.fault.camera_tampering": "tampering", "cameras.fault.camera_scene_change": "scene changed",
      "cameras.fault.camera_defocus": "out of focus", "cameras.fault.camera_video_loss": "video lost",
      "cameras.fault.camera_storage_failure": "storage failed",
    },
  });

  const card = el("section", { class: "card cameras-card", id: "cameras", "aria-labelledby": "cameras-title" });
  let doc = null;

  function faultText(f) {
    const name = FAULTS.includes(f.code) ? t(`cameras.fault.${f.code}`) : f.code;
    if (f.rtsp_status) return `${name} (RTSP ${f.rtsp_status})`;
    if (f.code === "camera_clock_drift" && f.drift_s !== undefined) return `${name} (${CG.fmtNum(f.drift_s)} s)`;
    return name;
  }

  function rows() {
    const ill = doc ? doc.cameras.filter((c) => c.status !== "ok") : [];
    if (doc && !ill.length) {
      return [el("tr", { class: "empty" }, el("td", { colspan: "6" }, t(doc.cameras.length ? "cameras.all_ok" : "cameras.none")))];
    }
    return ill.map((c) => {
      const faults = c.faults.map(faultText).join(", ");
      const first = c.faults.length ? t("cameras.since", { time: CG.fmtTime(c.faults[0].since_ms) }) : "";
      const drift = c.clock_drift_s === null || c.clock_drift_s === undefined ? CG.MISSING : `${CG.fmtNum(c.clock_drift_s)} s`;
      return el("tr", {},
        el("td", {}, el("span", { class: `pill ${STATUS[c.status] || "ack"}` }, STATUS[c.status] ? t(`cameras.status.${c.status}`) : c.status)),
        el("td", { title: c.cabinet ? t("cameras.cabinet", { name: c.cabinet }) : null }, c.gateway),
        el("td", { title: c.location ? c.location.text : null }, c.device),
        el("td", {}, faults ? faults + first : CG.MISSING), el("td", {}, c.firmware || CG.MISSING), el("td", { class: "num" }, drift));
    });
  }

  function draw() {
    let totals = "";
    if (doc && doc.cameras.length) {
      const n = { ok: 0, faulty: 0, unreachable: 0, dark: 0 };
      for (const c of doc.communes) for (const k of Object.keys(n)) n[k] += c[k];
      totals = t("cameras.totals", { ok: n.ok, total: doc.cameras.length, faulty: n.faulty, unreachable: n.unreachable + n.dark });
    }
    const cols = ["state", "cabinet", "camera", "faults", "firmware", "clock"].map((k) => el("th", { scope: "col" }, t(`cameras.col.${k}`)));
    // a narrow screen scrolls the table, not the page; the tabindex lets a keyboard scroll it
    card.replaceChildren(el("div", { class: "card-head" }, el("h2", { id: "cameras-title" }, t("cameras.title")), el("span", { class: "note" }, totals)),
      el("div", { class: "scroll", tabindex: "0" }, el("table", { class: "list" }, el("thead", {}, el("tr", {}, cols)), el("tbody", {}, rows()))));
  }

  async function refresh() {
    try {
      doc = await CG.apiAll("/api/v1/cameras?limit=1000", "cameras");
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
