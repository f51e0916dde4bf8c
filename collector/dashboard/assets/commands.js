// commands.js: commands from the control-centre page (issue 17, item 4), on the shell's contract (README.md).
//
// What other views call (each returns a Promise of the command sent, or null if the operator cancelled):
//   CG.commands.dim(target)            a lamp or a group to a level, until an expiry
//   CG.commands.override(target)       a lamp or a group forced on or off, until an expiry
//   CG.commands.clearOverride(target)  back to its program
//   CG.commands.readNow(target)        read a device now; its values come with the ack
//   CG.commands.pushProgram(commune)   a program set (JSON) to every gateway of a commune
//   CG.commands.junctionMode(junction) flashing amber, dark or back to normal, with a reason, confirmed twice
// Targets: {gateway, lamp} | {gateway, group} | {commune, group} (readNow: {gateway, device}); a commune is
// its INSEE code or {insee, name}; a junction its id (as its counts name it) or {junction}. `label` (optional)
// is how the dialog names it. CG.commands.can(kind) says whether the operator's rank allows it (controls are
// hidden otherwise; the server checks again); CG.commands.buttons(target) gives the lighting buttons a lamp,
// a group or a device page shows. Every command opens a CG.confirm saying what will change, then its ack
// shows live in the tray (pending -> acknowledged / refused / no answer). #/commands lists the recent ones.
"use strict";

(() => {
  const { el, t } = CG;
  const API = "/api/v1/control";
  const RANKS = ["viewer", "operator", "supervisor"];
  const NEEDS = { dim: "operator", override: "operator", clearOverride: "operator", readNow: "operator",
    pushProgram: "operator", junctionMode: "supervisor" };
  const HOURS = [0.5, 1, 2, 4, 8, 12, 24];
  const MODES = ["yellow_flash", "dark", "normal"];
  const OK = new Set(["done", "accepted"]);
  const BAD = new Set(["refused", "failed"]);
  const WAIT_S = 20;
  const FOLLOW_MS = 15 * 60_000;  // a command is followed this long at most (the link gives up sooner)
  let uid = 0;

  /** The operator's rank: the highest held, an operator if none (as the server says); nobody: none. */
  function rank() {
    if (!CG.me.name) return null;
    const held = RANKS.filter((r) => CG.me.roles.includes(r));
    return held[held.length - 1] || "operator";
  }

  function can(kind) {
    const mine = rank();
    return mine !== null && RANKS.indexOf(mine) >= RANKS.indexOf(NEEDS[kind] || "supervisor");
  }

  // -- describing targets and commands --------------------------------------------------------------

  function targetText(target) {
    if (target.label) return target.label;
    if (target.lamp) return t("commands.target.lamp", { lamp: target.lamp, gateway: target.gateway });
    if (target.device) return t("commands.target.device", { device: target.device, gateway: target.gateway });
    if (target.group && target.gateway) return t("commands.target.group", { group: target.group, gateway: target.gateway });
    if (target.group) return t("commands.target.groupCommune", { group: target.group, commune: target.commune });
    return String(target.gateway || target.commune || "");
  }

  function addressed(target) {
    return target.gateway ? { gateway: target.gateway } : { commune: target.commune };
  }

  function where(target) {
    return target.lamp ? { lamp: target.lamp } : { group: target.group };
  }

  function actionText(cmd) {
    const a = cmd.args || {};
    switch (cmd.action) {
      case "lighting.override":
        return t("commands.do.override", { what: a.lamp || a.group, level: CG.fmtNum(a.level_pct), until: CG.fmtTime(a.until_ms) });
      case "lighting.clear_override": return t("commands.do.clear", { what: a.lamp || a.group });
      case "lighting.push_programs":
        return t("commands.do.push", { programs: CG.fmtNum((a.program || []).length), calendars: CG.fmtNum((a.calendar || []).length) });
      case "device.read": return t("commands.do.read", { device: a.device });
      case "traffic.set_position": return t("commands.do.mode", { controller: a.controller, mode: t(`commands.mode.${a.position}`) });
      case "traffic.select_plan": return t("commands.do.plan", { controller: a.controller, plan: a.plan });
      default: return cmd.action;
    }
  }

  function targetOf(cmd) {
    const [kind, name] = String(cmd.target || "").split(":");
    return kind === "commune" ? t("commands.to.commune", { commune: name }) : t("commands.to.gateway", { gateway: name });
  }

  /** The state of a command for the operator: pending, acked, refused or timeout (and the counts behind it). */
  function stateOf(cmd) {
    const ds = cmd.deliveries || [];
    if (!cmd.final) return "pending";
    if (ds.length && ds.every((d) => OK.has(d.status))) return "acked";
    if (ds.some((d) => BAD.has(d.status))) return "refused";
    return "timeout";
  }

  function statePill(cmd) {
    const state = stateOf(cmd);
    const ds = cmd.deliveries || [];
    const done = ds.filter((d) => OK.has(d.status)).length;
    const text = ds.length > 1 ? t("commands.state.count", { state: t(`commands.state.${state}`), done: CG.fmtNum(done), n: CG.fmtNum(ds.length) })
      : t(`commands.state.${state}`);
    return el("span", { class: `pill cmd-${state}` }, text);
  }

  function details(cmd) {
    const out = [];
    for (const d of cmd.deliveries || []) {
      if (d.reason) out.push(el("li", {}, `${d.gateway} : ${d.reason}`));
      else if (d.result && d.result.values) {
        const values = Object.entries(d.result.values).map(([k, v]) => `${k} = ${typeof v === "number" ? CG.fmtNum(v) : v}`);
        out.push(el("li", {}, `${d.gateway} : ${values.join(", ")}`));
      }
    }
    return out.length ? el("ul", { class: "cmd-details" }, out) : null;
  }

  // -- the tray: each command sent from this page, followed until final ------------------------------------

  function tray() {
    let box = document.getElementById("cmd-tray");
    if (!box) {
      box = el("section", { id: "cmd-tray", class: "cmd-tray", "aria-label": t("commands.tray"), "aria-live": "polite" });
      document.body.append(box);
    }
    return box;
  }

  function trayItem(cmd) {
    const close = el("button", { type: "button", class: "btn cmd-close", "aria-label": t("commands.close") }, "×");
    const item = el("div", { class: "cmd-item", "data-command": cmd.id, "data-state": stateOf(cmd) });
    const fill = (c) => {
      item.dataset.state = stateOf(c);
      const more = details(c);
      item.replaceChildren(el("div", { class: "cmd-line" }, el("strong", {}, actionText(c)), statePill(c), close),
        el("div", { class: "note" }, targetOf(c)), ...(more ? [more] : []));
    };
    close.addEventListener("click", () => item.remove());
    fill(cmd);
    tray().prepend(item);
    return fill;
  }

  async function follow(cmd) {
    const fill = trayItem(cmd);
    const until = Date.now() + FOLLOW_MS;
    let doc = cmd;
    while (!doc.final && Date.now() < until) {
      try {
        doc = await CG.api(`${API}/commands/${encodeURIComponent(cmd.id)}?wait_s=${WAIT_S}`);
      } catch (err) {
        await new Promise((r) => setTimeout(r, 2000));
        continue;
      }
      fill(doc);
    }
    const state = stateOf(doc);
    if (state !== "pending") CG.toast(`${actionText(doc)} — ${t(`commands.state.${state}`)}`, state === "acked" ? "ok" : "error");
    return doc;
  }

  async function send(path, body) {
    try {
      const cmd = await CG.api(path, { method: "POST", body });
      follow(cmd);
      return cmd;
    } catch (err) {
      CG.toast(t("commands.failed", { detail: err.detail || err.message }), "error");
      return null;
    }
  }

  // -- the dialogs' controls -----------------------------------------------------------------------

  function field(label, control) {
    return el("div", { class: "cmd-field" }, el("label", { for: control.id }, label), control);
  }

  function hoursSelect(preset) {
    const select = el("select", { id: `cmd-hours-${++uid}` },
      HOURS.map((h) => el("option", { value: String(h), selected: h === preset }, h < 1 ? t("commands.minutes", { n: h * 60 }) : t("commands.hours", { n: h }))));
    return select;
  }

  function untilOf(select) { return Date.now() + Number(select.value) * 3_600_000; }

  async function communeGateways(insee) {
    try {
      const doc = await CG.apiAll("/api/v1/gateways?limit=1000", "gateways");  // every page: the count is of all
      return (doc.gateways || []).filter((g) => g.commune === insee).length;
    } catch (_) {
      return null;
    }
  }

  async function scope(target) {
    if (target.gateway) return targetText(target);
    const n = await communeGateways(target.commune);
    return n === null ? targetText(target) : `${targetText(target)} — ${CG.plural("commands.gateways", n)}`;
  }

  /** A level (dim) or on/off (override) until an expiry: the dialog says what will change as it is set. */
  async function lighting(target, mode) {
    const id = ++uid;
    const what = await scope(target);
    const hours = hoursSelect(mode === "dim" ? 2 : 1);
    const level = mode === "dim"
      ? el("input", { id: `cmd-level-${id}`, type: "range", min: "0", max: "100", step: "5", value: "50" })
      : el("select", { id: `cmd-level-${id}` }, el("option", { value: "100" }, t("commands.on")), el("option", { value: "0" }, t("commands.off")));
    const summary = el("p", { class: "cmd-summary", "aria-live": "polite" });
    const say = () => {
      const pct = Number(level.value);
      summary.textContent = t("commands.will.level", { what, level: CG.fmtNum(pct), until: CG.fmtTime(untilOf(hours), "datetime") });
    };
    level.addEventListener("input", say);
    hours.addEventListener("change", say);
    say();
    const answer = await CG.confirm({
      title: t(mode === "dim" ? "commands.dim.title" : "commands.override.title"),
      body: [field(t(mode === "dim" ? "commands.level" : "commands.state"), level), field(t("commands.for"), hours), summary],
      confirmLabel: t("commands.send"),
    });
    if (!answer.ok) return null;
    return send(`${API}/commands`, { ...addressed(target), action: "lighting.override",
      args: { ...where(target), level_pct: Number(level.value), until_ms: untilOf(hours) } });
  }

  async function clearOverride(target) {
    const answer = await CG.confirm({ title: t("commands.clear.title"),
      body: t("commands.will.clear", { what: await scope(target) }), confirmLabel: t("commands.send") });
    if (!answer.ok) return null;
    return send(`${API}/commands`, { ...addressed(target), action: "lighting.clear_override", args: where(target) });
  }

  async function readNow(target) {
    const answer = await CG.confirm({ title: t("commands.read.title"),
      body: t("commands.will.read", { what: targetText(target) }), confirmLabel: t("commands.send") });
    if (!answer.ok) return null;
    return send(`${API}/commands`, { gateway: target.gateway, action: "device.read", args: { device: target.device }, valid_s: 60 });
  }

  async function pushProgram(commune) {
    const insee = typeof commune === "string" ? commune : commune.insee;
    const name = typeof commune === "string" ? commune : `${commune.name || ""} (${insee})`.trim();
    const text = el("textarea", { id: `cmd-program-${++uid}`, rows: "8", class: "cmd-program", spellcheck: "false",
      placeholder: '{"program": [...], "calendar": [...]}' });
    const file = el("input", { id: `cmd-file-${uid}`, type: "file", accept: ".json,application/json" });
    file.addEventListener("change", async () => { if (file.files[0]) text.value = await file.files[0].text(); });
    const n = await communeGateways(insee);
    const summary = el("p", { class: "cmd-summary" }, t("commands.will.push", { commune: name, gateways: n === null ? "?" : CG.plural("commands.gateways", n) }));
    for (;;) {
      const answer = await CG.confirm({ title: t("commands.push.title"),
        body: [summary, field(t("commands.push.file"), file), field(t("commands.push.text"), text)], confirmLabel: t("commands.send") });
      if (!answer.ok) return null;
      let doc;
      try {
        doc = JSON.parse(text.value);
        if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new Error(t("commands.push.object"));
      } catch (err) {
        CG.toast(t("commands.push.bad", { detail: err.message }), "error");
        continue;  // the dialog again, with what was typed
      }
      return send(`${API}/commands`, { commune: insee, action: "lighting.push_programs", args: doc });
    }
  }

  /** Flashing amber, dark or normal, for a while, with a reason; a second dialog confirms once more. */
  async function junctionMode(junction) {
    const id = typeof junction === "string" ? junction : junction.junction;
    const current = typeof junction === "object" && junction.mode ? t("commands.junction.now", { mode: junction.mode, plan: junction.plan ?? CG.MISSING }) : "";
    const mode = el("select", { id: `cmd-mode-${++uid}` }, MODES.map((m) => el("option", { value: m }, t(`commands.mode.${m}`))));
    const hours = hoursSelect(1);
    const summary = el("p", { class: "cmd-summary", "aria-live": "polite" });
    const say = () => { summary.textContent = t("commands.will.mode", { junction: id, mode: t(`commands.mode.${mode.value}`), until: CG.fmtTime(untilOf(hours), "datetime") }); };
    mode.addEventListener("change", say);
    hours.addEventListener("change", say);
    say();
    const first = await CG.confirm({ title: t("commands.junction.title", { junction: id }), danger: true, reason: true,
      body: [current || null, field(t("commands.junction.mode"), mode), field(t("commands.for"), hours), summary,
        el("p", { class: "note" }, t("commands.junction.never"))].filter(Boolean),
      confirmLabel: t("commands.next") });
    if (!first.ok) return null;
    const chosen = t(`commands.mode.${mode.value}`);
    const second = await CG.confirm({ title: t("commands.junction.again"), danger: true,
      body: [t("commands.junction.sure", { junction: id, mode: chosen }), t("commands.junction.why", { reason: first.reason })],
      confirmLabel: t("commands.junction.confirm", { mode: chosen }) });
    if (!second.ok) return null;
    return send(`${API}/junctions/${encodeURIComponent(id)}/mode`,
      { mode: mode.value, reason: first.reason, duration_s: Math.round(Number(hours.value) * 3600) });
  }

  /** The lighting buttons of a lamp, a group or a device, those the operator's rank allows (none: null). */
  function buttons(target) {
    const list = [];
    const add = (kind, label, fn) => { if (can(kind)) list.push(el("button", { type: "button", class: "btn", onclick: fn }, label)); };
    if (target.lamp || target.group) {
      add("dim", t("commands.dim"), () => lighting(target, "dim"));
      add("override", t("commands.override"), () => lighting(target, "override"));
      add("clearOverride", t("commands.clear"), () => clearOverride(target));
    }
    if (target.device || target.lamp) add("readNow", t("commands.read"), () => readNow({ gateway: target.gateway, device: target.device || target.lamp, label: target.label }));
    return list.length ? el("div", { class: "cmd-buttons", role: "group", "aria-label": t("commands.title") }, list) : null;
  }

  CG.commands = {
    can, buttons, follow,
    dim: (target) => lighting(target, "dim"),
    override: (target) => lighting(target, "override"),
    clearOverride, readNow, pushProgram, junctionMode,
  };

  // -- #/commands: recent commands with their acks, the junctions, a program push -------------------------

  function cell(label, ...content) { return el("td", { "data-label": label }, ...content); }

  function commandsTable(commands) {
    const head = ["when", "who", "what", "to", "reason", "state"].map((k) => el("th", { scope: "col" }, t(`commands.col.${k}`)));
    const rows = commands.map((c) => el("tr", { "data-command": c.id },
      cell(t("commands.col.when"), CG.fmtTime(c.issued_at_ms)), cell(t("commands.col.who"), c.issued_by),
      cell(t("commands.col.what"), actionText(c)), cell(t("commands.col.to"), targetOf(c)),
      cell(t("commands.col.reason"), c.reason || CG.MISSING), cell(t("commands.col.state"), statePill(c), details(c))));
    if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: "6" }, t("commands.none"))));
    return el("table", { class: "list cmd-table" }, el("thead", {}, el("tr", {}, head)), el("tbody", {}, rows));
  }

  function junctionsTable(junctions) {
    const supervisor = can("junctionMode");
    const head = ["junction", "gateway", "mode", "plan", "seen"].map((k) => el("th", { scope: "col" }, t(`commands.jcol.${k}`)));
    if (supervisor) head.push(el("th", { scope: "col" }, el("span", { class: "sr-only" }, t("commands.jcol.act"))));
    const rows = junctions.map((j) => el("tr", {},
      cell(t("commands.jcol.junction"), j.junction), cell(t("commands.jcol.gateway"), j.gateway),
      cell(t("commands.jcol.mode"), j.mode ? el("span", { class: `pill mode-${j.mode}` }, j.mode) : CG.MISSING),
      cell(t("commands.jcol.plan"), j.plan ?? CG.MISSING), cell(t("commands.jcol.seen"), CG.fmtTime(j.ts_ms)),
      supervisor ? cell(t("commands.jcol.act"), j.controller
        ? el("button", { type: "button", class: "btn danger", onclick: () => junctionMode(j) }, t("commands.junction.button"))
        : el("span", { class: "note" }, t("commands.junction.nocontroller"))) : null));
    if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: "6" }, t("commands.junction.none"))));
    return el("table", { class: "list cmd-table" }, el("thead", {}, el("tr", {}, head)), el("tbody", {}, rows));
  }

  async function programCard() {
    const select = el("select", { id: "cmd-commune" });
    try {
      const doc = await CG.api("/api/v1/communes");
      for (const c of doc.communes || []) select.append(el("option", { value: c.insee }, `${c.name} (${c.insee})`));
    } catch (_) { /* no territory: nothing to choose */ }
    const go = el("button", { type: "button", class: "btn primary", onclick: () => {
      const opt = select.selectedOptions[0];
      if (opt) pushProgram({ insee: opt.value, name: opt.textContent.replace(/ \(\d\w+\)$/, "") });
    } }, t("commands.push.button"));
    return el("section", { class: "card" }, el("h2", {}, t("commands.push.card")),
      el("div", { class: "cmd-push" }, field(t("commands.commune"), select), go));
  }

  /** A lamp, a group or a device named by hand: the lighting buttons for it (what the map and the asset
   * pages show on a marker or a page). */
  function lightingCard() {
    const gateway = el("input", { id: "cmd-gateway", type: "text", autocomplete: "off", spellcheck: "false" });
    const kind = el("select", { id: "cmd-kind" }, ["lamp", "group", "device"].map((k) => el("option", { value: k }, t(`commands.kind.${k}`))));
    const name = el("input", { id: "cmd-name", type: "text", autocomplete: "off", spellcheck: "false" });
    const slot = el("div", { class: "cmd-slot" });
    const update = () => {
      const target = { gateway: gateway.value.trim(), [kind.value]: name.value.trim() };
      slot.replaceChildren(target.gateway && name.value.trim() ? buttons(target) || "" : el("p", { class: "note" }, t("commands.pick")));
    };
    for (const input of [gateway, kind, name]) input.addEventListener("input", update);
    update();
    return el("section", { class: "card" }, el("h2", {}, t("commands.lighting")),
      el("div", { class: "cmd-push" }, field(t("commands.gateway"), gateway), field(t("commands.kind"), kind),
        field(t("commands.name"), name)), slot);
  }

  async function render(view) {
    const list = el("div", { class: "cmd-list" }, el("p", { class: "note" }, t("commands.loading")));
    const junctions = el("div", {}, el("p", { class: "note" }, t("commands.loading")));
    view.append(el("section", { class: "card" }, el("div", { class: "card-head" }, el("h2", {}, t("commands.recent")),
      el("span", { class: "note" }, rank() ? t("commands.rank", { rank: t(`commands.rank.${rank()}`) }) : t("commands.nologin"))), list),
    el("section", { class: "card" }, el("h2", {}, t("commands.junctions")), junctions));
    if (can("dim")) view.append(lightingCard());
    if (can("pushProgram")) view.append(await programCard());
    let alive = true;
    const refresh = async () => {
      try {
        const doc = await CG.api(`${API}/commands?limit=50`);
        if (alive) list.replaceChildren(commandsTable(doc.commands || []));
      } catch (err) {
        if (alive) list.replaceChildren(el("p", { class: "note" }, err.status === 401 ? t("commands.nologin") : t("commands.error", { detail: err.detail || err.message })));
      }
      try {
        const doc = await CG.apiAll(`${API}/junctions?limit=1000`, "junctions");
        if (alive) junctions.replaceChildren(junctionsTable(doc.junctions || []));
      } catch (err) {
        if (alive) junctions.replaceChildren(el("p", { class: "note" }, err.status === 401 ? t("commands.nologin") : t("commands.error", { detail: err.detail || err.message })));
      }
    };
    await refresh();
    let timer = null;
    const stop = CG.on("change", (d) => {
      if (!d || d.topic !== "commands" || timer) return;
      timer = setTimeout(() => { timer = null; refresh(); }, 300);  // a burst of acks: one refresh
    });
    return () => { alive = false; stop(); if (timer) clearTimeout(timer); };
  }

  CG.route("commands", render);

  // the header's link to the view (the shell lists the others)
  function navLink() {
    const nav = document.getElementById("nav");
    if (!nav || nav.querySelector('a[data-route="commands"]')) return;
    nav.append(el("a", { href: "#/commands", "data-route": "commands", "data-t": "nav.commands" }, t("nav.commands")));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", navLink);
  else navLink();

  CG.strings({
    fr: {
      "nav.commands": "Commandes",
      "commands.title": "Commandes",
      "commands.tray": "Commandes envoyées",
      "commands.close": "Fermer",
      "commands.recent": "Commandes récentes",
      "commands.junctions": "Carrefours : mode et plan",
      "commands.loading": "Chargement…",
      "commands.none": "Aucune commande envoyée.",
      "commands.nologin": "Connectez-vous comme opérateur pour voir et envoyer des commandes.",
      "commands.error": "Indisponible : {detail}",
      "commands.failed": "Commande refusée : {detail}",
      "commands.rank": "Votre rôle : {rank}",
      "commands.rank.viewer": "lecture seule",
      "commands.rank.operator": "opérateur",
      "commands.rank.supervisor": "superviseur",
      "commands.send": "Envoyer",
      "commands.next": "Continuer",
      "commands.dim": "Graduer…",
      "commands.override": "Forcer…",
      "commands.clear": "Reprendre le programme",
      "commands.read": "Lire maintenant",
      "commands.dim.title": "Graduer l'éclairage",
      "commands.override.title": "Forcer l'éclairage",
      "commands.clear.title": "Reprendre le programme",
      "commands.read.title": "Lire l'appareil maintenant",
      "commands.push.title": "Envoyer un programme",
      "commands.push.card": "Programmes d'éclairage",
      "commands.push.button": "Envoyer un programme…",
      "commands.push.file": "Fichier JSON",
      "commands.push.text": "Programmes et calendriers (JSON)",
      "commands.push.object": "un objet JSON est attendu",
      "commands.push.bad": "Programme illisible : {detail}",
      "commands.commune": "Commune",
      "commands.lighting": "Commande d'éclairage",
      "commands.gateway": "Armoire",
      "commands.kind": "Cible",
      "commands.kind.lamp": "Lampe",
      "commands.kind.group": "Groupe",
      "commands.kind.device": "Appareil",
      "commands.name": "Nom",
      "commands.pick": "Indiquez l'armoire et la lampe, le groupe ou l'appareil.",
      "commands.level": "Niveau",
      "commands.state": "État",
      "commands.on": "Allumé (100 %)",
      "commands.off": "Éteint (0 %)",
      "commands.for": "Pendant",
      "commands.minutes": "{n} min",
      "commands.hours": "{n} h",
      "commands.gateways.one": "{n} armoire",
      "commands.gateways.other": "{n} armoires",
      "commands.target.lamp": "Lampe {lamp} (armoire {gateway})",
      "commands.target.device": "Appareil {device} (armoire {gateway})",
      "commands.target.group": "Groupe {group} (armoire {gateway})",
      "commands.target.groupCommune": "Groupe {group} dans la commune {commune}",
      "commands.will.level": "{what} : niveau {level} % jusqu'au {until}, puis retour au programme.",
      "commands.will.clear": "{what} : la dérogation prend fin, le programme reprend.",
      "commands.will.read": "{what} : lecture immédiate ; les valeurs arrivent avec l'acquittement.",
      "commands.will.push": "Le programme remplacera celui de {gateways} de {commune} ; un programme refusé laisse l'ancien en service.",
      "commands.will.mode": "Carrefour {junction} : {mode} jusqu'au {until}, puis le contrôleur reprend ses tables.",
      "commands.junction.title": "Mode du carrefour {junction}",
      "commands.junction.mode": "Mode",
      "commands.junction.now": "Actuellement : {mode}, plan {plan}.",
      "commands.junction.never": "Aucune couleur ni phase ne peut être commandée : seulement jaune clignotant, éteint ou normal.",
      "commands.junction.again": "Confirmez une seconde fois",
      "commands.junction.sure": "Le carrefour {junction} passera en « {mode} ».",
      "commands.junction.why": "Motif : {reason}",
      "commands.junction.confirm": "Passer en « {mode} »",
      "commands.junction.button": "Changer le mode…",
      "commands.junction.none": "Aucun carrefour connu.",
      "commands.junction.nocontroller": "contrôleur inconnu",
      "commands.mode.yellow_flash": "jaune clignotant",
      "commands.mode.dark": "éteint",
      "commands.mode.normal": "fonctionnement normal",
      "commands.do.override": "{what} à {level} % jusqu'à {until}",
      "commands.do.clear": "{what} : retour au programme",
      "commands.do.push": "Programme ({programs} programmes, {calendars} calendriers)",
      "commands.do.read": "Lecture de {device}",
      "commands.do.mode": "{controller} : {mode}",
      "commands.do.plan": "{controller} : plan {plan}",
      "commands.to.gateway": "armoire {gateway}",
      "commands.to.commune": "commune {commune}",
      "commands.state.pending": "en attente",
      "commands.state.acked": "acquittée",
      "commands.state.refused": "refusée",
      "commands.state.timeout": "sans réponse",
      "commands.state.count": "{state} ({done}/{n})",
      "commands.col.when": "Heure",
      "commands.col.who": "Par",
      "commands.col.what": "Commande",
      "commands.col.to": "Cible",
      "commands.col.reason": "Motif",
      "commands.col.state": "Acquittement",
      "commands.jcol.junction": "Carrefour",
      "commands.jcol.gateway": "Armoire",
      "commands.jcol.mode": "Mode",
      "commands.jcol.plan": "Plan",
      "commands.jcol.seen": "Vu à",
      "commands.jcol.act": "Action",
    },
    en: {
      "nav.commands": "Commands",
      "commands.title": "Commands",
      "commands.tray": "Commands sent",
      "commands.close": "Close",
      "commands.recent": "Recent commands",
      "commands.junctions": "Junctions: mode and plan",
      "commands.loading": "Loading…",
      "commands.none": "No command sent.",
      "commands.nologin": "Log in as an operator to see and send commands.",
      "commands.error": "Unavailable: {detail}",
      "commands.failed": "Command refused: {detail}",
      "commands.rank": "Your role: {rank}",
      "commands.rank.viewer": "read only",
      "commands.rank.operator": "operator",
      "commands.rank.supervisor": "supervisor",
      "commands.send": "Send",
      "commands.next": "Continue",
      "commands.dim": "Dim…",
      "commands.override": "Override…",
      "commands.clear": "Back to program",
      "commands.read": "Read now",
      "commands.dim.title": "Dim the lighting",
      "commands.override.title": "Override the lighting",
      "commands.clear.title": "Back to the program",
      "commands.read.title": "Read the device now",
      "commands.push.title": "Send a program",
      "commands.push.card": "Lighting programs",
      "commands.push.button": "Send a program…",
      "commands.push.file": "JSON file",
      "commands.push.text": "Programs and calendars (JSON)",
      "commands.push.object": "a JSON object is expected",
      "commands.push.bad": "Unreadable program: {detail}",
      "commands.commune": "Commune",
      "commands.lighting": "Lighting command",
      "commands.gateway": "Cabinet",
      "commands.kind": "Target",
      "commands.kind.lamp": "Lamp",
      "commands.kind.group": "Group",
      "commands.kind.device": "Device",
      "commands.name": "Name",
      "commands.pick": "Give the cabinet and the lamp, group or device.",
      "commands.level": "Level",
      "commands.state": "State",
      "commands.on": "On (100 %)",
      "commands.off": "Off (0 %)",
      "commands.for": "For",
      "commands.minutes": "{n} min",
      "commands.hours": "{n} h",
      "commands.gateways.one": "{n} cabinet",
      "commands.gateways.other": "{n} cabinets",
      "commands.target.lamp": "Lamp {lamp} (cabinet {gateway})",
      "commands.target.device": "Device {device} (cabinet {gateway})",
      "commands.target.group": "Group {group} (cabinet {gateway})",
      "commands.target.groupCommune": "Group {group} in commune {commune}",
      "commands.will.level": "{what}: level {level} % until {until}, then back to its program.",
      "commands.will.clear": "{what}: the override ends, the program takes over again.",
      "commands.will.read": "{what}: read at once; the values come with the acknowledgement.",
      "commands.will.push": "The program replaces the one of {gateways} in {commune}; a refused program leaves the previous one running.",
      "commands.will.mode": "Junction {junction}: {mode} until {until}, then the controller goes back to its tables.",
      "commands.junction.title": "Mode of junction {junction}",
      "commands.junction.mode": "Mode",
      "commands.junction.now": "Now: {mode}, plan {plan}.",
      "commands.junction.never": "No colour and no stage can be commanded: only flashing amber, dark or normal.",
      "commands.junction.again": "Confirm a second time",
      "commands.junction.sure": "Junction {junction} will go to “{mode}”.",
      "commands.junction.why": "Reason: {reason}",
      "commands.junction.confirm": "Go to “{mode}”",
      "commands.junction.button": "Change mode…",
      "commands.junction.none": "No junction known.",
      "commands.junction.nocontroller": "controller unknown",
      "commands.mode.yellow_flash": "flashing amber",
      "commands.mode.dark": "dark",
      "commands.mode.normal": "normal operation",
      "commands.do.override": "{what} at {level} % until {until}",
      "commands.do.clear": "{what}: back to program",
      "commands.do.push": "Program ({programs} programs, {calendars} calendars)",
      "commands.do.read": "Read {device}",
      "commands.do.mode": "{controller}: {mode}",
      "commands.do.plan": "{controller}: plan {plan}",
      "commands.to.gateway": "cabinet {gateway}",
      "commands.to.commune": "commune {commune}",
      "commands.state.pending": "pending",
      "commands.state.acked": "acknowledged",
      "commands.state.refused": "refused",
      "commands.state.timeout": "no answer",
      "commands.state.count": "{state} ({done}/{n})",
      "commands.col.when": "Time",
      "commands.col.who": "By",
      "commands.col.what": "Command",
      "commands.col.to": "Target",
      "commands.col.reason": "Reason",
      "commands.col.state": "Acknowledgement",
      "commands.jcol.junction": "Junction",
      "commands.jcol.gateway": "Cabinet",
      "commands.jcol.mode": "Mode",
      "commands.jcol.plan": "Plan",
      "commands.jcol.seen": "Seen at",
      "commands.jcol.act": "Action",
    },
  });
})();
