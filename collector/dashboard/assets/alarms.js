// Alarms of the control-centre page: the route #/alarms (list with filters and counts), #/alarms/<id> (an
// alarm's devices, history, comments and audit, and what an operator does with it), and the compact widget
// the overview shows above the fold (CG.widgets.alarms). Data: GET /api/v1/alarms[/<id>]; actions POST
// /api/v1/alarms/<id>/{ack,assign,comment,clear}, each confirmed. Live: the stream's `change` {topic: "alarms"}.
// Every value from the server goes into the page as text (never as HTML).
"use strict";

(() => {
  const { el } = CG;
  const t = (key, vars) => CG.t(key, vars);
  const API = "/api/v1/alarms";
  const TOPIC = "alarms";
  const PAGE = 50;
  const COMPACT_ROWS = 8;
  const KINDS = ["lamp_failure", "dimming_failure", "day_burner", "communication_failure", "supply_loss",
    "relay_failure", "power_too_high", "power_too_low", "water_leak", "door_open", "clock_unsynchronised",
    "clock_invalid", "counter_implausible", "record_rejected", "config_error", "lamp_unknown", "command_failure",
    "safety_error", "camera_tampering", "sensor_battery_low"];
  const STATE_FILTERS = ["active", "open", "acknowledged", "cleared", "all"];
  const RANKS = ["viewer", "operator", "supervisor"];
  // the list's filters last while the page is open (coming back from an alarm finds them as they were)
  const filters = { state: "active", severity: "", commune: "", kind: "", gateway: "", offset: 0 };

  const kindName = (code) => (KINDS.includes(code) ? t(`alarms.kind.${code}`) : code);
  const hashOf = (...parts) => `#/${parts.map(encodeURIComponent).join("/")}`;
  const when = (ms) => CG.fmtTime(ms);
  const pill = (cls, text) => el("span", { class: `pill ${cls}` }, text);
  const severityPill = (s) => pill(s === "critical" ? "critical" : "major", t(`alarms.severity.${s}`));
  const statePill = (s) => pill(`state-${s}`, t(`alarms.state.${s}`));

  /** An operator may act when logged in with a rank above viewer (no rank at all is an operator). */
  function canAct() {
    if (!CG.me.name) return false;
    const held = RANKS.filter((r) => CG.me.roles.includes(r));
    return (held[held.length - 1] || "operator") !== "viewer";
  }

  function duration(ms) {
    if (ms == null) return CG.MISSING;
    const minutes = Math.round(ms / 60000);
    if (minutes < 60) return t("alarms.minutes", { n: CG.fmtNum(minutes) });
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return t("alarms.hours", { h: CG.fmtNum(hours), m: String(minutes % 60).padStart(2, "0") });
    return t("alarms.days", { n: CG.fmtNum(Math.floor(hours / 24)) });
  }

  function where(a) {
    return a.commune_name ? `${a.gateway} · ${a.commune_name}` : a.gateway;
  }

  function devicesText(a) {
    if (a.devices_total === 1) return t("alarms.devices.one");
    return a.devices_active === a.devices_total
      ? t("alarms.devices.all", { n: CG.fmtNum(a.devices_total) })
      : t("alarms.devices.some", { active: CG.fmtNum(a.devices_active), n: CG.fmtNum(a.devices_total) });
  }

  function query(extra) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...filters, ...(extra || {}) })) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
    return `${API}?${q}`;
  }

  /** Run `load` now and at every change of the alarms (coalesced); returns the function that stops it. */
  function live(load) {
    let pending = null;
    let stopped = false;
    const run = () => { pending = null; if (!stopped) load(); };
    const off = CG.on("change", (d) => { if (d && d.topic === TOPIC && !pending) pending = setTimeout(run, 250); });
    load();
    return () => { stopped = true; off(); if (pending) clearTimeout(pending); };
  }

  // -- actions -----------------------------------------------------------------------------------------

  function field(id, label, control) {
    return el("div", { class: "alarm-field" }, el("label", { for: id }, label), control);
  }

  /** Ask, then do `action` on alarm `a`; true if it was done. */
  async function act(a, action) {
    const title = t(`alarms.${action}.title`, { id: a.id });
    const summary = t("alarms.confirm.what", { kind: kindName(a.kind), where: where(a), devices: devicesText(a) });
    let input = null;
    let body = null;
    if (action === "assign") {
      const names = [...new Set([CG.me.name, a.assignee].filter(Boolean))];
      input = el("input", { id: "alarm-assign-to", type: "text", required: true, maxlength: "64", list: "alarm-operators", value: a.assignee || CG.me.name || "" });
      body = [summary, field("alarm-assign-to", t("alarms.assign.to"), input), el("datalist", { id: "alarm-operators" }, names.map((n) => el("option", { value: n })))];
    } else if (action === "comment" || action === "ack") {
      input = el("textarea", { id: "alarm-comment-text", rows: "3", maxlength: "1000" });
      body = [summary, field("alarm-comment-text", t(action === "ack" ? "alarms.comment.optional" : "alarms.comment.text"), input)];
    } else {
      body = [summary, t("alarms.clear.body")];
    }
    const answer = await CG.confirm({ title, body, confirmLabel: t(`alarms.${action}.button`), danger: action === "clear", reason: action === "clear" });
    if (!answer.ok) return false;
    const text = action === "clear" ? answer.reason : input ? input.value.trim() : "";
    if ((action === "comment" || action === "assign") && !text) {
      CG.toast(t("alarms.empty"), "error");
      return false;
    }
    const payload = action === "assign" ? { operator: text } : text ? { comment: text } : undefined;
    try {
      await CG.api(`${API}/${a.id}/${action}`, { method: "POST", body: payload });
      CG.toast(t(`alarms.${action}.done`, { id: a.id }), "ok");
      return true;
    } catch (err) {
      CG.toast(t("alarms.failed", { detail: err.detail || err.message }), "error");
      return false;
    }
  }

  function actionButtons(a, after) {
    if (!canAct()) return [];
    const button = (action, enabled, cls) => (enabled
      ? el("button", { type: "button", class: `btn ${cls || ""}`, "data-action": action,
        "aria-label": t(`alarms.${action}.label`, { id: a.id, kind: kindName(a.kind) }),
        onclick: async (e) => { e.stopPropagation(); if (await act(a, action) && after) after(); } }, t(`alarms.${action}.button`))
      : null);
    const active = a.state !== "cleared";
    return [button("ack", a.state === "open", "primary"), button("assign", active), button("comment", true),
      button("clear", active, "danger-outline")].filter(Boolean);
  }

  // -- the compact widget (overview) -----------------------------------------------------------------

  function widget(slot, opts) {
    const compact = Boolean(opts && opts.compact);
    const title = el("h2", { id: "alarm-widget-title" }, t("alarms.widget.title"));
    const counts = el("p", { class: "alarm-counts", "aria-live": "polite" });
    // id "alarms": where the overview showed its table of open alarms before this widget (its tests read it)
    const list = el("ul", { id: "alarms", class: "alarm-rows", "aria-labelledby": "alarm-widget-title" });
    const more = el("a", { href: "#/alarms", class: "alarm-more" }, t("alarms.widget.all"));
    slot.classList.add("alarm-widget");
    if (compact) slot.classList.add("compact");
    slot.replaceChildren(el("div", { class: "card-head" }, title, more), counts, el("div", { class: "alarm-scroll" }, list));

    async function load() {
      let doc;
      try {
        doc = await CG.api(`${API}?state=active&limit=${compact ? COMPACT_ROWS : PAGE}`);
      } catch (err) {
        counts.replaceChildren(el("span", { class: "error" }, t("alarms.unavailable", { detail: err.detail || err.message })));
        return;
      }
      const c = doc.counts;
      counts.replaceChildren(
        el("span", { class: "count open" }, el("b", {}, CG.fmtNum(c.state.open)), " ", t("alarms.count.open")),
        el("span", { class: "count ack" }, el("b", {}, CG.fmtNum(c.state.acknowledged)), " ", t("alarms.count.acknowledged")),
        el("span", { class: "count crit" }, el("b", {}, CG.fmtNum(c.severity.critical || 0)), " ", t("alarms.count.critical")));
      list.replaceChildren();
      if (!doc.alarms.length) list.append(el("li", { class: "empty" }, t("alarms.none")));
      for (const a of doc.alarms) {
        const link = el("a", { href: hashOf("alarms", a.id) }, kindName(a.kind));
        list.append(el("li", { class: `alarm-row sev-${a.severity} st-${a.state}`, "data-alarm": a.id },
          el("div", { class: "line1" }, severityPill(a.severity), link, statePill(a.state)),
          el("div", { class: "line2 note" }, el("span", {}, where(a)), el("span", {}, devicesText(a)),
            el("span", {}, t("alarms.since", { time: when(a.first_ts_ms) })))));
      }
      if (doc.total > doc.alarms.length) list.append(el("li", { class: "more" }, el("a", { href: "#/alarms" }, t("alarms.widget.more", { n: CG.fmtNum(doc.total - doc.alarms.length) }))));
    }

    return live(load);
  }

  // -- the list (#/alarms) ----------------------------------------------------------------------------

  function select(id, label, options, value, onchange) {
    const s = el("select", { id, onchange: (e) => onchange(e.target.value) },
      options.map(([v, text]) => el("option", { value: v, selected: v === value }, text)));
    return field(id, label, s);
  }

  function renderList(view) {
    const head = el("div", { class: "card-head" }, el("h2", { id: "alarms-title" }, t("alarms.title")));
    const form = el("form", { class: "alarm-filters", role: "search", "aria-label": t("alarms.filters"), onsubmit: (e) => e.preventDefault() });
    const summary = el("p", { class: "alarm-counts", "aria-live": "polite" });
    const tbody = el("tbody");
    const table = el("table", { class: "list alarm-table", "aria-labelledby": "alarms-title" },
      el("thead", {}, el("tr", {}, [t("alarms.col.severity"), t("alarms.col.kind"), t("alarms.col.where"), t("alarms.col.devices"),
        t("alarms.col.since"), t("alarms.col.state"), t("alarms.col.assignee"), t("alarms.col.actions")].map((h) => el("th", { scope: "col" }, h)))),
      tbody);
    const pager = el("nav", { class: "alarm-pager", "aria-label": t("alarms.pages") });
    view.append(el("section", { class: "card alarms-page" }, head, form, summary, el("div", { class: "table-wrap" }, table), pager));

    function setFilter(name, value) {
      filters[name] = value;
      filters.offset = 0;
      load();
    }

    function drawFilters(doc) {
      const c = doc.counts;
      const opt = (counts, names) => [["", t("alarms.filter.any")], ...Object.entries(counts).map(([k, n]) => [k, `${names ? names(k) : k} (${CG.fmtNum(n)})`])];
      const gw = el("input", { id: "alarm-f-gateway", type: "search", value: filters.gateway, placeholder: t("alarms.filter.gateway.hint"),
        onchange: (e) => setFilter("gateway", e.target.value.trim()) });
      const keep = document.activeElement && document.activeElement.id;
      form.replaceChildren(
        select("alarm-f-state", t("alarms.filter.state"), STATE_FILTERS.map((s) => [s, t(`alarms.filter.state.${s}`)]), filters.state, (v) => setFilter("state", v)),
        select("alarm-f-severity", t("alarms.filter.severity"), opt(c.severity, (s) => t(`alarms.severity.${s}`)), filters.severity, (v) => setFilter("severity", v)),
        select("alarm-f-commune", t("alarms.filter.commune"), opt(c.commune, (k) => doc.commune_names[k] || k), filters.commune, (v) => setFilter("commune", v)),
        select("alarm-f-kind", t("alarms.filter.kind"), opt(c.kind, kindName), filters.kind, (v) => setFilter("kind", v)),
        field("alarm-f-gateway", t("alarms.filter.gateway"), gw));
      if (keep) { const again = document.getElementById(keep); if (again) again.focus(); }
    }

    function draw(doc) {
      drawFilters(doc);
      const s = doc.counts.state;
      summary.replaceChildren(
        el("span", { class: "count open" }, el("b", {}, CG.fmtNum(s.open)), " ", t("alarms.count.open")),
        el("span", { class: "count ack" }, el("b", {}, CG.fmtNum(s.acknowledged)), " ", t("alarms.count.acknowledged")),
        el("span", { class: "count cleared" }, el("b", {}, CG.fmtNum(s.cleared)), " ", t("alarms.count.cleared24")));
      tbody.replaceChildren();
      if (!doc.alarms.length) tbody.append(el("tr", { class: "empty" }, el("td", { colspan: "8" }, t("alarms.none.filtered"))));
      for (const a of doc.alarms) {
        const open = hashOf("alarms", a.id);
        tbody.append(el("tr", { class: "clickable", "data-alarm": a.id, onclick: (e) => { if (!e.target.closest("a, button")) CG.go(open); } },
          el("td", { "data-label": t("alarms.col.severity") }, severityPill(a.severity)),
          el("td", { "data-label": t("alarms.col.kind") }, el("a", { href: open }, kindName(a.kind))),
          el("td", { "data-label": t("alarms.col.where") }, where(a)),
          el("td", { "data-label": t("alarms.col.devices") }, devicesText(a)),
          el("td", { "data-label": t("alarms.col.since") }, when(a.first_ts_ms)),
          el("td", { "data-label": t("alarms.col.state") }, statePill(a.state)),
          el("td", { "data-label": t("alarms.col.assignee") }, a.assignee || CG.MISSING),
          el("td", { class: "actions", "data-label": t("alarms.col.actions") }, actionButtons(a, load))));
      }
      const first = doc.total ? doc.offset + 1 : 0;
      const last = doc.offset + doc.alarms.length;
      const page = (offset) => () => { filters.offset = offset; load(); };
      pager.replaceChildren(
        el("button", { type: "button", class: "btn", disabled: doc.offset === 0, onclick: page(Math.max(0, doc.offset - PAGE)) }, t("alarms.prev")),
        el("span", { class: "note" }, t("alarms.range", { first: CG.fmtNum(first), last: CG.fmtNum(last), total: CG.fmtNum(doc.total) })),
        el("button", { type: "button", class: "btn", disabled: last >= doc.total, onclick: page(doc.offset + PAGE) }, t("alarms.next")));
    }

    async function load() {
      try {
        draw(await CG.api(query({ limit: PAGE })));
      } catch (err) {
        if (err.status === 400) {  // a filter the server refuses (a commune gone from the territory)
          Object.assign(filters, { severity: "", commune: "", kind: "", gateway: "", offset: 0 });
        }
        summary.replaceChildren(el("span", { class: "error", role: "alert" }, t("alarms.unavailable", { detail: err.detail || err.message })));
      }
    }

    return live(load);
  }

  // -- one alarm (#/alarms/<id>) -----------------------------------------------------------------------

  function renderOne(view, id) {
    const card = el("section", { class: "card alarm-detail", "aria-labelledby": "alarm-title" });
    view.append(el("p", { class: "crumbs" }, el("a", { href: "#/alarms" }, t("alarms.back"))), card);

    function facts(a) {
      const rows = [
        [t("alarms.fact.where"), el("span", {}, el("a", { href: hashOf("cabinet", a.gateway) }, a.gateway), a.commune_name ? ` · ${a.commune_name} (${a.commune})` : ` · ${a.commune}`)],
        [t("alarms.fact.since"), CG.fmtTime(a.first_ts_ms, "datetime")],
        [t("alarms.fact.devices"), devicesText(a)],
        [t("alarms.fact.assignee"), a.assignee || CG.MISSING],
      ];
      if (a.acknowledged_by) rows.push([t("alarms.fact.acked"), t("alarms.by", { time: CG.fmtTime(a.acknowledged_ms, "datetime"), who: a.acknowledged_by })]);
      if (a.state === "cleared") {
        rows.push([t("alarms.fact.cleared"), a.cleared_how === "restored"
          ? t("alarms.cleared.restored", { time: CG.fmtTime(a.cleared_ms, "datetime") })
          : t("alarms.by", { time: CG.fmtTime(a.cleared_ms, "datetime"), who: a.cleared_by })]);
        rows.push([t("alarms.fact.duration"), duration(a.duration_ms)]);
      }
      if (a.scope) rows.push([t("alarms.fact.scope"), a.scope]);
      return el("dl", { class: "alarm-facts" }, rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    }

    function draw(a) {
      const devices = el("table", { class: "list", "aria-labelledby": "alarm-devices-title" },
        el("thead", {}, el("tr", {}, [t("alarms.col.device"), t("alarms.col.raised"), t("alarms.col.back")].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, a.devices.map((d) => el("tr", {},
          el("td", {}, el("a", { href: hashOf("lamp", a.gateway, d.device) }, d.device)),
          el("td", {}, CG.fmtTime(d.raised_ts_ms, "seconds")),
          el("td", {}, d.active ? pill("down", t("alarms.device.failing")) : CG.fmtTime(d.restored_ts_ms, "seconds"))))));
      const history = el("ol", { class: "alarm-history" }, a.history.map((h) => el("li", {},
        el("time", {}, CG.fmtTime(h.ts_ms, "seconds")), " ",
        t(`alarms.history.${h.kind}`, { device: h.device, code: kindName(h.code) }), " ",
        el("span", { class: "note" }, t(`alarms.source.${h.source}`)))));
      const audit = el("ol", { class: "alarm-audit" }, a.audit.length ? a.audit.map((e) => el("li", {},
        el("time", {}, CG.fmtTime(e.at_ms, "datetime")), " ", el("b", {}, e.operator), " ",
        t(`alarms.audit.${e.action}`), e.detail ? el("q", {}, e.detail) : null)) : [el("li", { class: "note" }, t("alarms.audit.none"))]);
      const buttons = actionButtons(a, load);
      card.replaceChildren(
        el("div", { class: "card-head" }, el("h2", { id: "alarm-title" }, t("alarms.one.title", { id: a.id, kind: kindName(a.kind) })),
          el("span", { class: "pills" }, severityPill(a.severity), statePill(a.state))),
        facts(a),
        buttons.length ? el("div", { class: "alarm-actions", role: "group", "aria-label": t("alarms.col.actions") }, buttons)
          : el("p", { class: "note" }, t(CG.me.name ? "alarms.readonly" : "alarms.login")),
        el("div", { class: "alarm-columns" },
          el("section", { "aria-labelledby": "alarm-devices-title" }, el("h3", { id: "alarm-devices-title" }, t("alarms.devices.title", { n: CG.fmtNum(a.devices_total) })), el("div", { class: "table-wrap" }, devices)),
          el("section", { "aria-labelledby": "alarm-history-title" }, el("h3", { id: "alarm-history-title" }, t("alarms.history.title")), history),
          el("section", { "aria-labelledby": "alarm-audit-title" }, el("h3", { id: "alarm-audit-title" }, t("alarms.audit.title")), audit)));
    }

    async function load() {
      try {
        draw(await CG.api(`${API}/${encodeURIComponent(id)}`));
      } catch (err) {
        card.replaceChildren(el("p", { class: "error", role: "alert" }, err.status === 404 ? t("alarms.unknown", { id }) : t("alarms.unavailable", { detail: err.detail || err.message })));
      }
    }

    return live(load);
  }

  CG.route("alarms", (view, args) => (args.length ? renderOne(view, args[0]) : renderList(view)));
  CG.widgets.alarms = widget;

  CG.strings({
    fr: {
      "alarms.title": "Alarmes",
      "alarms.widget.title": "Alarmes actives",
      "alarms.widget.all": "Toutes les alarmes",
      "alarms.widget.more": "… et {n} de plus",
      "alarms.none": "Aucune alarme active",
      "alarms.none.filtered": "Aucune alarme ne correspond à ces filtres",
      "alarms.unavailable": "Alarmes indisponibles : {detail}",
      "alarms.unknown": "L'alarme {id} n'existe pas.",
      "alarms.count.open": "ouvertes",
      "alarms.count.acknowledged": "acquittées",
      "alarms.count.critical": "critiques",
      "alarms.count.cleared24": "levées en 24 h",
      "alarms.since": "depuis {time}",
      "alarms.severity.critical": "Critique",
      "alarms.severity.major": "Majeure",
      "alarms.state.open": "Ouverte",
      "alarms.state.acknowledged": "Acquittée",
      "alarms.state.cleared": "Levée",
      "alarms.devices.one": "1 équipement",
      "alarms.devices.all": "{n} équipements",
      "alarms.devices.some": "{active} sur {n} équipements",
      "alarms.devices.title": "Équipements ({n})",
      "alarms.device.failing": "en défaut",
      "alarms.filters": "Filtres des alarmes",
      "alarms.filter.any": "Toutes",
      "alarms.filter.state": "État",
      "alarms.filter.state.active": "Actives",
      "alarms.filter.state.open": "Ouvertes",
      "alarms.filter.state.acknowledged": "Acquittées",
      "alarms.filter.state.cleared": "Levées",
      "alarms.filter.state.all": "Toutes",
      "alarms.filter.severity": "Gravité",
      "alarms.filter.commune": "Commune",
      "alarms.filter.kind": "Type",
      "alarms.filter.gateway": "Armoire",
      "alarms.filter.gateway.hint": "nom exact",
      "alarms.col.severity": "Gravité",
      "alarms.col.kind": "Alarme",
      "alarms.col.where": "Armoire · commune",
      "alarms.col.devices": "Équipements",
      "alarms.col.since": "Depuis",
      "alarms.col.state": "État",
      "alarms.col.assignee": "Attribuée à",
      "alarms.col.actions": "Actions",
      "alarms.col.device": "Équipement",
      "alarms.col.raised": "En défaut depuis",
      "alarms.col.back": "Rétabli",
      "alarms.pages": "Pages d'alarmes",
      "alarms.prev": "Précédentes",
      "alarms.next": "Suivantes",
      "alarms.range": "{first}–{last} sur {total}",
      "alarms.back": "← Toutes les alarmes",
      "alarms.one.title": "Alarme {id} : {kind}",
      "alarms.fact.where": "Armoire",
      "alarms.fact.since": "Depuis",
      "alarms.fact.devices": "Équipements",
      "alarms.fact.assignee": "Attribuée à",
      "alarms.fact.acked": "Acquittée",
      "alarms.fact.cleared": "Levée",
      "alarms.fact.duration": "Durée",
      "alarms.fact.scope": "Bus",
      "alarms.by": "le {time} par {who}",
      "alarms.cleared.restored": "le {time}, tous les équipements rétablis",
      "alarms.history.title": "Historique",
      "alarms.history.raise": "{device} : {code}",
      "alarms.history.clear": "{device} rétabli",
      "alarms.source.mqtt": "(MQTT)",
      "alarms.source.upload": "(téléversement)",
      "alarms.audit.title": "Commentaires et actions",
      "alarms.audit.none": "Aucune action pour l'instant",
      "alarms.audit.acknowledge": "a acquitté",
      "alarms.audit.assign": "a attribué à",
      "alarms.audit.comment": "a commenté",
      "alarms.audit.clear": "a levé",
      "alarms.readonly": "Consultation seule : il faut le rôle opérateur pour agir sur une alarme.",
      "alarms.login": "Connectez-vous comme opérateur pour agir sur une alarme.",
      "alarms.confirm.what": "{kind} — {where} — {devices}.",
      "alarms.ack.title": "Acquitter l'alarme {id}",
      "alarms.ack.button": "Acquitter",
      "alarms.ack.label": "Acquitter l'alarme {id} ({kind})",
      "alarms.ack.done": "Alarme {id} acquittée",
      "alarms.assign.title": "Attribuer l'alarme {id}",
      "alarms.assign.button": "Attribuer",
      "alarms.assign.label": "Attribuer l'alarme {id} ({kind})",
      "alarms.assign.to": "Opérateur",
      "alarms.assign.done": "Alarme {id} attribuée",
      "alarms.comment.title": "Commenter l'alarme {id}",
      "alarms.comment.button": "Commenter",
      "alarms.comment.label": "Commenter l'alarme {id} ({kind})",
      "alarms.comment.text": "Commentaire",
      "alarms.comment.optional": "Commentaire (facultatif)",
      "alarms.comment.done": "Commentaire ajouté à l'alarme {id}",
      "alarms.clear.title": "Lever l'alarme {id}",
      "alarms.clear.button": "Lever",
      "alarms.clear.label": "Lever l'alarme {id} ({kind})",
      "alarms.clear.body": "Ses équipements n'ont pas signalé leur rétablissement : dites pourquoi vous la levez.",
      "alarms.clear.done": "Alarme {id} levée",
      "alarms.empty": "Rien n'a été écrit : action annulée.",
      "alarms.failed": "Action refusée : {detail}",
      "alarms.minutes": "{n} min",
      "alarms.hours": "{h} h {m}",
      "alarms.days": "{n} j",
      "alarms.kind.lamp_failure": "Lampe en panne",
      "alarms.kind.dimming_failure": "Défaut de gradation",
      "alarms.kind.day_burner": "Allumée de jour",
      "alarms.kind.communication_failure": "Perte de communication",
      "alarms.kind.supply_loss": "Coupure d'alimentation",
      "alarms.kind.relay_failure": "Défaut de relais",
      "alarms.kind.power_too_high": "Puissance trop élevée",
      "alarms.kind.power_too_low": "Puissance trop faible",
      "alarms.kind.water_leak": "Fuite d'eau",
      "alarms.kind.door_open": "Porte ouverte",
      "alarms.kind.clock_unsynchronised": "Horloge non synchronisée",
      "alarms.kind.clock_invalid": "Horloge invalide",
      "alarms.kind.counter_implausible": "Compteur invraisemblable",
      "alarms.kind.record_rejected": "Mesure refusée",
      "alarms.kind.config_error": "Erreur de configuration",
      "alarms.kind.lamp_unknown": "Lampe inconnue",
      "alarms.kind.command_failure": "Échec de commande",
      "alarms.kind.safety_error": "Défaut de sécurité du carrefour",
      "alarms.kind.camera_tampering": "Caméra masquée ou déplacée",
      "alarms.kind.sensor_battery_low": "Pile de capteur faible",
    },
    en: {
      "alarms.title": "Alarms",
      "alarms.widget.title": "Active alarms",
      "alarms.widget.all": "All alarms",
      "alarms.widget.more": "… and {n} more",
      "alarms.none": "No active alarm",
      "alarms.none.filtered": "No alarm matches these filters",
      "alarms.unavailable": "Alarms unavailable: {detail}",
      "alarms.unknown": "There is no alarm {id}.",
      "alarms.count.open": "open",
      "alarms.count.acknowledged": "acknowledged",
      "alarms.count.critical": "critical",
      "alarms.count.cleared24": "cleared in 24 h",
      "alarms.since": "since {time}",
      "alarms.severity.critical": "Critical",
      "alarms.severity.major": "Major",
      "alarms.state.open": "Open",
      "alarms.state.acknowledged": "Acknowledged",
      "alarms.state.cleared": "Cleared",
      "alarms.devices.one": "1 device",
      "alarms.devices.all": "{n} devices",
      "alarms.devices.some": "{active} of {n} devices",
      "alarms.devices.title": "Devices ({n})",
      "alarms.device.failing": "failing",
      "alarms.filters": "Alarm filters",
      "alarms.filter.any": "Any",
      "alarms.filter.state": "State",
      "alarms.filter.state.active": "Active",
      "alarms.filter.state.open": "Open",
      "alarms.filter.state.acknowledged": "Acknowledged",
      "alarms.filter.state.cleared": "Cleared",
      "alarms.filter.state.all": "All",
      "alarms.filter.severity": "Severity",
      "alarms.filter.commune": "Commune",
      "alarms.filter.kind": "Kind",
      "alarms.filter.gateway": "Cabinet",
      "alarms.filter.gateway.hint": "exact name",
      "alarms.col.severity": "Severity",
      "alarms.col.kind": "Alarm",
      "alarms.col.where": "Cabinet · commune",
      "alarms.col.devices": "Devices",
      "alarms.col.since": "Since",
      "alarms.col.state": "State",
      "alarms.col.assignee": "Assigned to",
      "alarms.col.actions": "Actions",
      "alarms.col.device": "Device",
      "alarms.col.raised": "Failing since",
      "alarms.col.back": "Back",
      "alarms.pages": "Alarm pages",
      "alarms.prev": "Previous",
      "alarms.next": "Next",
      "alarms.range": "{first}–{last} of {total}",
      "alarms.back": "← All alarms",
      "alarms.one.title": "Alarm {id}: {kind}",
      "alarms.fact.where": "Cabinet",
      "alarms.fact.since": "Since",
      "alarms.fact.devices": "Devices",
      "alarms.fact.assignee": "Assigned to",
      "alarms.fact.acked": "Acknowledged",
      "alarms.fact.cleared": "Cleared",
      "alarms.fact.duration": "Duration",
      "alarms.fact.scope": "Bus",
      "alarms.by": "on {time} by {who}",
      "alarms.cleared.restored": "on {time}, every device back",
      "alarms.history.title": "History",
      "alarms.history.raise": "{device}: {code}",
      "alarms.history.clear": "{device} back",
      "alarms.source.mqtt": "(MQTT)",
      "alarms.source.upload": "(upload)",
      "alarms.audit.title": "Comments and actions",
      "alarms.audit.none": "No action yet",
      "alarms.audit.acknowledge": "acknowledged",
      "alarms.audit.assign": "assigned to",
      "alarms.audit.comment": "commented",
      "alarms.audit.clear": "cleared",
      "alarms.readonly": "Read only: acting on an alarm needs the operator role.",
      "alarms.login": "Log in as an operator to act on an alarm.",
      "alarms.confirm.what": "{kind} — {where} — {devices}.",
      "alarms.ack.title": "Acknowledge alarm {id}",
      "alarms.ack.button": "Acknowledge",
      "alarms.ack.label": "Acknowledge alarm {id} ({kind})",
      "alarms.ack.done": "Alarm {id} acknowledged",
      "alarms.assign.title": "Assign alarm {id}",
      "alarms.assign.button": "Assign",
      "alarms.assign.label": "Assign alarm {id} ({kind})",
      "alarms.assign.to": "Operator",
      "alarms.assign.done": "Alarm {id} assigned",
      "alarms.comment.title": "Comment on alarm {id}",
      "alarms.comment.button": "Comment",
      "alarms.comment.label": "Comment on alarm {id} ({kind})",
      "alarms.comment.text": "Comment",
      "alarms.comment.optional": "Comment (optional)",
      "alarms.comment.done": "Comment added to alarm {id}",
      "alarms.clear.title": "Clear alarm {id}",
      "alarms.clear.button": "Clear",
      "alarms.clear.label": "Clear alarm {id} ({kind})",
      "alarms.clear.body": "Its devices have not reported they are back: say why you clear it.",
      "alarms.clear.done": "Alarm {id} cleared",
      "alarms.empty": "Nothing was written: cancelled.",
      "alarms.failed": "Refused: {detail}",
      "alarms.minutes": "{n} min",
      "alarms.hours": "{h} h {m}",
      "alarms.days": "{n} d",
      "alarms.kind.lamp_failure": "Lamp failure",
      "alarms.kind.dimming_failure": "Dimming failure",
      "alarms.kind.day_burner": "Lit in daytime",
      "alarms.kind.communication_failure": "Communication lost",
      "alarms.kind.supply_loss": "Power cut",
      "alarms.kind.relay_failure": "Relay failure",
      "alarms.kind.power_too_high": "Power too high",
      "alarms.kind.power_too_low": "Power too low",
      "alarms.kind.water_leak": "Water leak",
      "alarms.kind.door_open": "Door open",
      "alarms.kind.clock_unsynchronised": "Clock not synchronised",
      "alarms.kind.clock_invalid": "Clock invalid",
      "alarms.kind.counter_implausible": "Implausible meter reading",
      "alarms.kind.record_rejected": "Reading rejected",
      "alarms.kind.config_error": "Configuration error",
      "alarms.kind.lamp_unknown": "Unknown lamp",
      "alarms.kind.command_failure": "Command failed",
      "alarms.kind.safety_error": "Junction safety fault",
      "alarms.kind.camera_tampering": "Camera masked or moved",
      "alarms.kind.sensor_battery_low": "Sensor battery low",
    },
  });
})();
