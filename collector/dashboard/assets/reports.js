// Residents' reports of the control-centre page, a work queue: #/reports (the list with its filters and a
// map of the reports by state) and #/report/<id> (one report: where, its lamp and the lamp's fault, its
// reporters and history; assign it, move it to a next state, write the public note the resident reads).
// Data: GET /api/v1/reports[?state,commune,service,assigned,limit,offset], GET /api/v1/reports/<id>;
// actions POST /api/v1/reports/<id>/{state,assign}, each confirmed. Live: the stream's `change` {topic:
// "reports"}. The map is a small Leaflet map of its own, on a plain background (points only, no tiles).
// Every value from the server goes into the page as text (never as HTML).
"use strict";

(() => {
  const { el } = CG;
  const t = (key, vars) => CG.t(key, vars);
  const API = "/api/v1/reports";
  const TOPIC = "reports";
  const PAGE = 50;
  const STATES = ["received", "dispatched", "in_progress", "resolved"];
  const OPEN = ["received", "dispatched", "in_progress"];
  const RANKS = ["viewer", "operator", "supervisor"];
  const COLORS = { received: "#d64545", dispatched: "#e8a317", in_progress: "#2f6fdf", resolved: "#2e9e5b" };
  const SERVICES = ["lamp-out", "pothole", "fallen-branch", "manhole-cover", "bus-shelter", "graffiti", "bulky-waste"];
  // the list's filters last while the page is open (coming back from a report finds them as they were)
  const filters = { state: "open", commune: "", service: "", assigned: "", offset: 0 };

  const hashOf = (...parts) => `#/${parts.map(encodeURIComponent).join("/")}`;
  const statePill = (s) => el("span", { class: `pill report-${s}` }, t(`reports.state.${s}`));
  const serviceName = (code) => (SERVICES.includes(code) ? t(`reports.service.${code}`) : code);

  /** An operator may act when logged in with a rank above viewer (no rank at all is an operator). */
  function canAct() {
    if (!CG.me.name) return false;
    const held = RANKS.filter((r) => CG.me.roles.includes(r));
    return (held[held.length - 1] || "operator") !== "viewer";
  }

  function communeName(insee) {
    const doc = CG.last("summary");
    const c = doc && doc.communes && doc.communes.find((x) => x.insee === insee);
    return c ? c.name : insee;
  }

  function place(r) {
    if (r.address) return r.address;
    if (r.lamp) return t("reports.lamp", { lamp: r.lamp });
    if (r.lat !== null && r.long !== null) return `${CG.fmtNum(r.lat, 5)}, ${CG.fmtNum(r.long, 5)}`;
    return CG.MISSING;
  }

  /** Run `load` now and at every change of the reports (coalesced), and once more when the first summary
   * comes (the communes' names); returns the function that stops it. */
  function live(load) {
    let pending = null;
    let stopped = false;
    const run = () => { pending = null; if (!stopped) load(); };
    const off = CG.on("change", (d) => { if (d && d.topic === TOPIC && !pending) pending = setTimeout(run, 250); });
    let offSummary = null;
    if (!CG.last("summary")) offSummary = CG.on("summary", () => { offSummary(); offSummary = null; run(); });
    load();
    return () => { stopped = true; off(); if (offSummary) offSummary(); if (pending) clearTimeout(pending); };
  }

  function field(id, label, control) {
    return el("div", { class: "report-field" }, el("label", { for: id }, label), control);
  }

  // -- the map (points on a plain background) ----------------------------------------------------------

  function reportMap(box) {
    if (!window.L) return { draw() {}, remove() {} };
    // no animation: the view is redrawn (and its map removed) at every change of the reports
    const map = L.map(box, { zoomSnap: 0.5, minZoom: 8, maxZoom: 18, attributionControl: false, zoomAnimation: false,
      fadeAnimation: false, markerZoomAnimation: false });
    let removed = false;
    const communes = L.layerGroup().addTo(map);
    const points = L.layerGroup().addTo(map);
    map.setView([47.32, 5.04], 11);
    let placed = false;
    const placeCommunes = () => {  // the territory's communes as grey points: where the reports are
      const summary = CG.last("summary");
      if (placed || !summary) return;
      placed = true;
      for (const c of summary.communes || []) {
        if (typeof c.lat !== "number") continue;
        L.circleMarker([c.lat, c.lon], { radius: 3, color: "#8a94a6", weight: 1, fillOpacity: 0.4, interactive: false }).addTo(communes);
      }
    };
    return {
      draw(reports) {
        placeCommunes();
        points.clearLayers();
        const bounds = [];
        for (const r of reports) {
          if (typeof r.lat !== "number" || typeof r.long !== "number") continue;
          const m = L.circleMarker([r.lat, r.long], { radius: 8, color: "#fff", weight: 2, fillColor: COLORS[r.state] || "#666", fillOpacity: 0.95 });
          m.bindTooltip(`${r.service_request_id} · ${serviceName(r.service_code)} · ${t(`reports.state.${r.state}`)}`);
          m.on("click", () => CG.go(hashOf("report", r.service_request_id)));
          m.addTo(points);
          bounds.push([r.lat, r.long]);
        }
        if (bounds.length) map.fitBounds(bounds, { padding: [24, 24], maxZoom: 15, animate: false });
        setTimeout(() => { if (!removed) map.invalidateSize({ animate: false }); }, 0);
      },
      remove() { removed = true; map.remove(); },
    };
  }

  function legend() {
    return el("ul", { class: "report-legend", "aria-label": t("reports.legend") },
      STATES.map((s) => el("li", {}, el("span", { class: "dot", style: `background:${COLORS[s]}`, "aria-hidden": "true" }), t(`reports.state.${s}`))));
  }

  // -- the list (#/reports) ------------------------------------------------------------------------------

  function select(id, label, options, value, onchange) {
    const s = el("select", { id, onchange: (e) => onchange(e.target.value) },
      options.map(([v, text]) => el("option", { value: v, selected: v === value }, text)));
    return field(id, label, s);
  }

  function query() {
    const q = new URLSearchParams();
    q.set("state", filters.state === "open" ? OPEN.join(",") : filters.state === "all" ? "" : filters.state);
    for (const k of ["commune", "service", "assigned"]) q.set(k, filters[k]);
    q.set("limit", String(PAGE));
    q.set("offset", String(filters.offset));
    for (const [k, v] of [...q.entries()]) if (!v) q.delete(k);
    return `${API}?${q}`;
  }

  function renderList(view) {
    const form = el("form", { class: "report-filters", role: "search", "aria-label": t("reports.filters"), onsubmit: (e) => e.preventDefault() });
    const summary = el("p", { class: "report-counts", "aria-live": "polite" });
    const tbody = el("tbody");
    const table = el("table", { class: "list report-table", "aria-labelledby": "reports-title" },
      el("thead", {}, el("tr", {}, ["col.id", "col.service", "col.place", "col.commune", "col.received", "col.state", "col.assigned"]
        .map((h) => el("th", { scope: "col" }, t(`reports.${h}`))))),
      tbody);
    const pager = el("nav", { class: "report-pager", "aria-label": t("reports.pages") });
    const mapBox = el("div", { class: "report-map", role: "region", "aria-label": t("reports.map.label") });
    view.append(el("section", { class: "card reports-page" },
      el("div", { class: "card-head" }, el("h2", { id: "reports-title" }, t("reports.title"))),
      form, summary,
      el("div", { class: "report-columns" },
        el("div", { class: "report-listing" }, el("div", { class: "table-wrap" }, table), pager),
        el("div", { class: "report-side" }, mapBox, legend(), el("p", { class: "note" }, t("reports.map.note"))))));
    const map = reportMap(mapBox);

    function setFilter(name, value) {
      filters[name] = value;
      filters.offset = 0;
      load();
    }

    function drawFilters() {
      const summaryDoc = CG.last("summary");
      const communes = ((summaryDoc && summaryDoc.communes) || []).filter((c) => c.gateways || c.open_reports)
        .map((c) => [c.insee, c.name]);
      form.replaceChildren(
        select("report-f-state", t("reports.filter.state"), [["open", t("reports.filter.open")], ...STATES.map((s) => [s, t(`reports.state.${s}`)]), ["all", t("reports.filter.all")]], filters.state, (v) => setFilter("state", v)),
        select("report-f-commune", t("reports.filter.commune"), [["", t("reports.filter.any")], ...communes], filters.commune, (v) => setFilter("commune", v)),
        select("report-f-service", t("reports.filter.service"), [["", t("reports.filter.any")], ...SERVICES.map((s) => [s, serviceName(s)])], filters.service, (v) => setFilter("service", v)),
        select("report-f-assigned", t("reports.filter.assigned"), [["", t("reports.filter.anyone")], ["me", t("reports.filter.me")], ["none", t("reports.filter.nobody")]], filters.assigned, (v) => setFilter("assigned", v)));
    }

    function draw(doc) {
      tbody.replaceChildren();
      if (!doc.reports.length) tbody.append(el("tr", {}, el("td", { colspan: "7", class: "empty" }, t("reports.none"))));
      for (const r of doc.reports) {
        const id = r.service_request_id;
        const cells = [
          ["col.id", el("a", { href: hashOf("report", id) }, t("reports.open.text", { id }))],
          ["col.service", serviceName(r.service_code)],
          ["col.place", place(r)],
          ["col.commune", communeName(r.jurisdiction_id)],
          ["col.received", CG.fmtTime(r.requested_datetime)],
          ["col.state", statePill(r.state)],
          ["col.assigned", r.assigned_to || CG.MISSING],
        ];
        tbody.append(el("tr", { "data-report": id }, cells.map(([h, v]) => el("td", { "data-label": t(`reports.${h}`) }, v))));
      }
      summary.textContent = doc.total
        ? t("reports.range", { first: CG.fmtNum(doc.offset + 1), last: CG.fmtNum(doc.offset + doc.reports.length), total: CG.fmtNum(doc.total) })
        : t("reports.none");
      const prev = el("button", { type: "button", class: "btn", disabled: doc.offset === 0, onclick: () => { filters.offset = Math.max(0, doc.offset - PAGE); load(); } }, t("reports.prev"));
      const next = el("button", { type: "button", class: "btn", disabled: doc.offset + doc.reports.length >= doc.total, onclick: () => { filters.offset = doc.offset + PAGE; load(); } }, t("reports.next"));
      pager.replaceChildren(prev, next);
      map.draw(doc.reports);
    }

    async function load() {
      drawFilters();
      try {
        draw(await CG.api(query()));
      } catch (err) {
        summary.replaceChildren(el("span", { class: "error", role: "alert" }, t("reports.unavailable", { detail: err.detail || err.message })));
      }
    }

    const stop = live(load);
    return () => { stop(); map.remove(); };
  }

  // -- one report (#/report/<id>) ----------------------------------------------------------------------

  /** Ask, then move report `r` to `state` (the same state: a new public note only); true if done. */
  async function move(r, state) {
    const note = el("textarea", { id: "report-note", rows: "3", maxlength: "1000" });
    const same = state === r.state;
    const body = [
      same ? t("reports.note.body") : t("reports.move.body", { from: t(`reports.state.${r.state}`), to: t(`reports.state.${state}`) }),
      state === "resolved" ? t("reports.move.resolved") : null,
      field("report-note", t(same ? "reports.note.text" : "reports.note.optional"), note),
      el("p", { class: "note" }, t("reports.note.public")),
    ];
    const answer = await CG.confirm({ title: t(same ? "reports.note.title" : `reports.to.${state}`, { id: r.service_request_id }), body,
      confirmLabel: t(same ? "reports.note.button" : "reports.move.button") });
    if (!answer.ok) return false;
    const text = note.value.trim();
    if (same && !text) {
      CG.toast(t("reports.empty"), "error");
      return false;
    }
    try {
      await CG.api(`${API}/${r.service_request_id}/state`, { method: "POST", body: { state, from_state: r.state, ...(text ? { note: text } : {}) } });
      CG.toast(t(same ? "reports.note.done" : "reports.move.done", { id: r.service_request_id, state: t(`reports.state.${state}`) }), "ok");
      return true;
    } catch (err) {
      // 409: someone (an operator, the repaired lamp) moved it meanwhile: say so and show it as it is now
      CG.toast(err.status === 409 ? t("reports.conflict", { id: r.service_request_id }) : t("reports.failed", { detail: err.detail || err.message }), "error");
      return err.status === 409;
    }
  }

  async function assign(r) {
    const input = el("input", { id: "report-assign-to", type: "text", maxlength: "64", value: r.assigned_to || CG.me.name || "" });
    const answer = await CG.confirm({ title: t("reports.assign.title", { id: r.service_request_id }),
      body: [t("reports.assign.body"), field("report-assign-to", t("reports.assign.to"), input)], confirmLabel: t("reports.assign.button") });
    if (!answer.ok) return false;
    const name = input.value.trim();
    try {
      await CG.api(`${API}/${r.service_request_id}/assign`, { method: "POST", body: { operator: name || null } });
      CG.toast(name ? t("reports.assign.done", { id: r.service_request_id, name }) : t("reports.unassign.done", { id: r.service_request_id }), "ok");
      return true;
    } catch (err) {
      CG.toast(t("reports.failed", { detail: err.detail || err.message }), "error");
      return false;
    }
  }

  function facts(r) {
    const lamp = r.lamp ? el("a", { href: hashOf("lamp", ...r.lamp.split("/")) }, r.lamp) : CG.MISSING;
    let fault = CG.MISSING;
    if (r.lamp_fault) {
      fault = r.lamp_fault.open ? t("reports.fault.open", { time: CG.fmtTime(r.lamp_fault.since_ms, "datetime") })
        : r.fault_since_ms ? t("reports.fault.was", { time: CG.fmtTime(r.fault_since_ms, "datetime") }) : t("reports.fault.none");
    }
    const rows = [
      ["service", serviceName(r.service_code)], ["commune", communeName(r.jurisdiction_id)], ["place", place(r)],
      ["lampid", lamp], ["fault", fault], ["received", CG.fmtTime(r.requested_datetime, "datetime")],
      ["updated", CG.fmtTime(r.updated_datetime, "datetime")], ["expected", r.expected_datetime ? CG.fmtTime(r.expected_datetime, "datetime") : CG.MISSING],
      ["assigned", r.assigned_to || t("reports.nobody")], ["count", CG.fmtNum(r.reports)],
      ["note", r.status_notes || CG.MISSING], ["description", r.description || CG.MISSING],
    ];
    return el("dl", { class: "report-facts" }, rows.flatMap(([k, v]) => [el("dt", {}, t(`reports.fact.${k}`)), el("dd", { "data-fact": k }, v)]));
  }

  function renderOne(view, id) {
    const card = el("section", { class: "card report-detail", "aria-live": "polite" });
    view.append(el("p", {}, el("a", { href: "#/reports", class: "back" }, t("reports.back"))), card);
    let map = null;

    function draw(r) {
      if (map) { map.remove(); map = null; }
      const actions = el("div", { class: "report-actions" });
      if (canAct()) {
        for (const s of r.next_states) {
          actions.append(el("button", { type: "button", class: `btn ${s === "resolved" ? "primary" : ""}`, "data-to": s,
            onclick: async () => { if (await move(r, s)) load(); } }, t(`reports.to.${s}.button`)));
        }
        actions.append(
          el("button", { type: "button", class: "btn", "data-action": "note", onclick: async () => { if (await move(r, r.state)) load(); } }, t("reports.note.button")),
          el("button", { type: "button", class: "btn", "data-action": "assign", onclick: async () => { if (await assign(r)) load(); } }, t("reports.assign.button")));
      } else {
        actions.append(el("p", { class: "note" }, t(CG.me.name ? "reports.readonly" : "reports.login")));
      }
      const resident = el("a", { href: `/open311/follow/${r.service_request_id}?lang=${CG.lang}`, target: "_blank", rel: "noopener", class: "resident-link" }, t("reports.resident.page"));
      const reporters = el("ul", { class: "report-people" }, r.reporters.map((p) => el("li", {},
        el("time", {}, CG.fmtTime(p.submitted_datetime, "datetime")), " ",
        [p.first_name, p.last_name].filter(Boolean).join(" ") || t("reports.anonymous"),
        p.email ? ` · ${p.email}` : "", p.phone ? ` · ${p.phone}` : "", p.attached ? ` · ${t("reports.attached")}` : "",
        p.description ? el("q", {}, p.description) : null)));
      // no operator: the resident's report itself (the first row), else the collector (a repaired lamp)
      const history = el("ol", { class: "report-history" }, r.history.map((h, i) => el("li", {},
        el("time", {}, CG.fmtTime(h.datetime, "datetime")), " ", statePill(h.state), " ",
        h.operator || t(i === 0 ? "reports.resident" : "reports.system"), h.note ? el("q", {}, h.note) : null)));
      const mapBox = el("div", { class: "report-map small", role: "region", "aria-label": t("reports.map.one") });
      card.replaceChildren(
        el("div", { class: "card-head" }, el("h2", {}, t("reports.one.title", { id: r.service_request_id, service: serviceName(r.service_code) })),
          el("div", { class: "pills" }, statePill(r.state), el("span", { class: "pill" }, t(`reports.public.${r.status}`)))),
        actions,
        el("div", { class: "report-columns" },
          el("div", {}, facts(r), resident),
          el("div", {}, typeof r.lat === "number" ? mapBox : null)),
        el("div", { class: "report-columns" },
          el("section", { "aria-labelledby": "report-people-title" }, el("h3", { id: "report-people-title" }, t("reports.reporters")), reporters),
          el("section", { "aria-labelledby": "report-history-title" }, el("h3", { id: "report-history-title" }, t("reports.history")), history)));
      if (typeof r.lat === "number") {
        map = reportMap(mapBox);
        map.draw([r]);
      }
    }

    async function load() {
      try {
        draw(await CG.api(`${API}/${encodeURIComponent(id)}`));
      } catch (err) {
        card.replaceChildren(el("p", { class: "error", role: "alert" }, err.status === 404 ? t("reports.unknown", { id }) : t("reports.unavailable", { detail: err.detail || err.message })));
      }
    }

    const stop = live(load);
    return () => { stop(); if (map) map.remove(); };
  }

  CG.route("reports", (view) => renderList(view));
  CG.route("report", (view, args) => renderOne(view, args[0] || ""));

  CG.strings({
    fr: {
      "reports.title": "Signalements des habitants",
      "reports.filters": "Filtres des signalements",
      "reports.filter.state": "État",
      "reports.filter.open": "À traiter",
      "reports.filter.all": "Tous",
      "reports.filter.commune": "Commune",
      "reports.filter.service": "Objet",
      "reports.filter.assigned": "Attribué à",
      "reports.filter.any": "Toutes",
      "reports.filter.anyone": "N'importe qui",
      "reports.filter.me": "Moi",
      "reports.filter.nobody": "Personne",
      "reports.state.received": "Reçu",
      "reports.state.dispatched": "Programmé",
      "reports.state.in_progress": "En cours",
      "reports.state.resolved": "Résolu",
      "reports.public.open": "Public : ouvert",
      "reports.public.closed": "Public : clos",
      "reports.service.lamp-out": "Lampadaire éteint",
      "reports.service.pothole": "Nid-de-poule",
      "reports.service.fallen-branch": "Branche tombée",
      "reports.service.manhole-cover": "Plaque d'égout",
      "reports.service.bus-shelter": "Abribus",
      "reports.service.graffiti": "Tag",
      "reports.service.bulky-waste": "Encombrants",
      "reports.col.id": "N°",
      "reports.col.service": "Objet",
      "reports.col.place": "Lieu",
      "reports.col.commune": "Commune",
      "reports.col.received": "Reçu",
      "reports.col.state": "État",
      "reports.col.assigned": "Attribué à",
      "reports.lamp": "lampadaire {lamp}",
      "reports.none": "Aucun signalement ne correspond à ces filtres",
      "reports.range": "{first}–{last} sur {total}",
      "reports.pages": "Pages de signalements",
      "reports.prev": "Précédents",
      "reports.next": "Suivants",
      "reports.open.text": "n° {id}",
      "reports.unavailable": "Signalements indisponibles : {detail}",
      "reports.unknown": "Le signalement {id} n'existe pas.",
      "reports.legend": "Légende de la carte",
      "reports.map.label": "Carte des signalements de la page, colorés selon leur état",
      "reports.map.one": "Carte : où se trouve ce signalement",
      "reports.map.note": "Les signalements sans coordonnées (adresse seule) ne figurent que dans la liste.",
      "reports.back": "← Tous les signalements",
      "reports.one.title": "Signalement n° {id} : {service}",
      "reports.fact.service": "Objet",
      "reports.fact.commune": "Commune",
      "reports.fact.place": "Lieu",
      "reports.fact.lampid": "Lampadaire",
      "reports.fact.fault": "Panne (télégestion)",
      "reports.fact.received": "Reçu le",
      "reports.fact.updated": "Mis à jour le",
      "reports.fact.expected": "Intervention prévue",
      "reports.fact.assigned": "Attribué à",
      "reports.fact.count": "Habitants l'ayant signalé",
      "reports.fact.note": "Note publique",
      "reports.fact.description": "Description",
      "reports.fault.open": "en panne depuis le {time}",
      "reports.fault.was": "panne du {time}, réparée",
      "reports.fault.none": "aucune panne vue",
      "reports.nobody": "personne",
      "reports.anonymous": "anonyme",
      "reports.attached": "rattaché",
      "reports.system": "collecteur",
      "reports.resident": "habitant (Open311)",
      "reports.conflict": "Le signalement {id} a changé entre-temps : le voici tel qu'il est, rien n'a été modifié.",
      "reports.reporters": "Habitants (données personnelles : usage interne)",
      "reports.history": "Historique",
      "reports.resident.page": "Voir la page du résident ↗",
      "reports.readonly": "Consultation seule : il faut le rôle opérateur pour traiter un signalement.",
      "reports.login": "Connectez-vous comme opérateur pour traiter un signalement.",
      "reports.to.received": "Remettre le signalement {id} à « reçu »",
      "reports.to.dispatched": "Programmer une intervention (signalement {id})",
      "reports.to.in_progress": "Intervention en cours (signalement {id})",
      "reports.to.resolved": "Résoudre le signalement {id}",
      "reports.to.received.button": "Remettre à « reçu »",
      "reports.to.dispatched.button": "Programmer",
      "reports.to.in_progress.button": "En cours",
      "reports.to.resolved.button": "Résoudre",
      "reports.move.body": "L'état passe de « {from} » à « {to} ».",
      "reports.move.resolved": "Le signalement sera clos pour l'habitant.",
      "reports.move.button": "Confirmer",
      "reports.move.done": "Signalement {id} : {state}",
      "reports.note.title": "Note publique du signalement {id}",
      "reports.note.body": "L'état ne change pas ; l'habitant lira cette note.",
      "reports.note.text": "Note publique",
      "reports.note.optional": "Note publique (facultative : sinon le texte de l'état)",
      "reports.note.public": "Visible par l'habitant sur sa page de suivi et par l'API Open311.",
      "reports.note.button": "Écrire la note publique",
      "reports.note.done": "Note publique du signalement {id} enregistrée",
      "reports.assign.title": "Attribuer le signalement {id}",
      "reports.assign.body": "Nom de l'opérateur (vide : personne).",
      "reports.assign.to": "Opérateur",
      "reports.assign.button": "Attribuer",
      "reports.assign.done": "Signalement {id} attribué à {name}",
      "reports.unassign.done": "Signalement {id} attribué à personne",
      "reports.empty": "Rien n'a été écrit : action annulée.",
      "reports.failed": "Action refusée : {detail}",
    },
    en: {
      "reports.title": "Residents' reports",
      "reports.filters": "Report filters",
      "reports.filter.state": "State",
      "reports.filter.open": "To handle",
      "reports.filter.all": "All",
      "reports.filter.commune": "Commune",
      "reports.filter.service": "Subject",
      "reports.filter.assigned": "Assigned to",
      "reports.filter.any": "All",
      "reports.filter.anyone": "Anyone",
      "reports.filter.me": "Me",
      "reports.filter.nobody": "Nobody",
      "reports.state.received": "Received",
      "reports.state.dispatched": "Scheduled",
      "reports.state.in_progress": "In progress",
      "reports.state.resolved": "Resolved",
      "reports.public.open": "Public: open",
      "reports.public.closed": "Public: closed",
      "reports.service.lamp-out": "Street lamp out",
      "reports.service.pothole": "Pothole",
      "reports.service.fallen-branch": "Fallen branch",
      "reports.service.manhole-cover": "Manhole cover",
      "reports.service.bus-shelter": "Bus shelter",
      "reports.service.graffiti": "Graffiti",
      "reports.service.bulky-waste": "Bulky waste",
      "reports.col.id": "No.",
      "reports.col.service": "Subject",
      "reports.col.place": "Place",
      "reports.col.commune": "Commune",
      "reports.col.received": "Received",
      "reports.col.state": "State",
      "reports.col.assigned": "Assigned to",
      "reports.lamp": "lamp {lamp}",
      "reports.none": "No report matches these filters",
      "reports.range": "{first}–{last} of {total}",
      "reports.pages": "Report pages",
      "reports.prev": "Previous",
      "reports.next": "Next",
      "reports.open.text": "no. {id}",
      "reports.unavailable": "Reports unavailable: {detail}",
      "reports.unknown": "Report {id} does not exist.",
      "reports.legend": "Map legend",
      "reports.map.label": "Map of the reports of the page, coloured by state",
      "reports.map.one": "Map: where this report is",
      "reports.map.note": "Reports without coordinates (an address only) are in the list only.",
      "reports.back": "← All reports",
      "reports.one.title": "Report no. {id}: {service}",
      "reports.fact.service": "Subject",
      "reports.fact.commune": "Commune",
      "reports.fact.place": "Place",
      "reports.fact.lampid": "Lamp",
      "reports.fact.fault": "Fault (remote monitoring)",
      "reports.fact.received": "Received",
      "reports.fact.updated": "Updated",
      "reports.fact.expected": "Repair expected",
      "reports.fact.assigned": "Assigned to",
      "reports.fact.count": "Residents who reported it",
      "reports.fact.note": "Public note",
      "reports.fact.description": "Description",
      "reports.fault.open": "faulty since {time}",
      "reports.fault.was": "fault of {time}, repaired",
      "reports.fault.none": "no fault seen",
      "reports.nobody": "nobody",
      "reports.anonymous": "anonymous",
      "reports.attached": "attached",
      "reports.system": "collector",
      "reports.resident": "resident (Open311)",
      "reports.conflict": "Report {id} changed meanwhile: here it is as it is now, nothing was changed.",
      "reports.reporters": "Residents (personal data: internal use)",
      "reports.history": "History",
      "reports.resident.page": "See the resident's page ↗",
      "reports.readonly": "Read only: handling a report needs the operator role.",
      "reports.login": "Log in as an operator to handle a report.",
      "reports.to.received": "Put report {id} back to \"received\"",
      "reports.to.dispatched": "Schedule a repair (report {id})",
      "reports.to.in_progress": "Repair in progress (report {id})",
      "reports.to.resolved": "Resolve report {id}",
      "reports.to.received.button": "Back to \"received\"",
      "reports.to.dispatched.button": "Schedule",
      "reports.to.in_progress.button": "In progress",
      "reports.to.resolved.button": "Resolve",
      "reports.move.body": "The state goes from \"{from}\" to \"{to}\".",
      "reports.move.resolved": "The report will be closed for the resident.",
      "reports.move.button": "Confirm",
      "reports.move.done": "Report {id}: {state}",
      "reports.note.title": "Public note of report {id}",
      "reports.note.body": "The state does not change; the resident will read this note.",
      "reports.note.text": "Public note",
      "reports.note.optional": "Public note (optional: else the state's own text)",
      "reports.note.public": "Shown to the resident on their follow page and by the Open311 API.",
      "reports.note.button": "Write the public note",
      "reports.note.done": "Public note of report {id} saved",
      "reports.assign.title": "Assign report {id}",
      "reports.assign.body": "The operator's name (empty: nobody).",
      "reports.assign.to": "Operator",
      "reports.assign.button": "Assign",
      "reports.assign.done": "Report {id} assigned to {name}",
      "reports.unassign.done": "Report {id} assigned to nobody",
      "reports.empty": "Nothing was written: cancelled.",
      "reports.failed": "Refused: {detail}",
    },
  });
})();
