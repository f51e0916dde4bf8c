// Control-centre shell: window.CG, what every feature module of the page builds on (assets/README.md).
// Language and strings, times in Europe/Paris, the hash router, the JSON API, the one live stream,
// the confirmation dialog, toasts and who is logged in. Text only into the page, never HTML.
"use strict";

(() => {
  const TZ = "Europe/Paris";
  const LANGS = ["fr", "en"];
  const LANG_KEY = "cg.lang";
  const MISSING = "—";
  const strings = { fr: {}, en: {} };
  const routes = [];  // {pattern: [segments], render}
  const listeners = new Map();  // event name -> Set of fns
  const langListeners = new Set();
  const last = new Map();  // event name -> last data of the stream
  let view = null;
  let cleanup = null;
  let rendering = 0;

  function pickLang() {
    let saved = null;
    try { saved = localStorage.getItem(LANG_KEY); } catch (_) { /* storage refused: the browser's choice */ }
    if (LANGS.includes(saved)) return saved;
    for (const l of navigator.languages || [navigator.language || ""]) {
      const base = String(l).slice(0, 2).toLowerCase();
      if (LANGS.includes(base)) return base;
    }
    return "fr";
  }

  // -- elements ----------------------------------------------------------------------------------

  /** el("tag", {class, onclick, ...attrs}, ...children): children are nodes or text (never HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // -- language ------------------------------------------------------------------------------------

  function t(key, vars) {
    const table = strings[CG.lang];
    let s = table[key] ?? strings.fr[key];
    if (s === undefined) {
      console.warn(`CG.t: no string ${key}`);
      return key;
    }
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
    return s;
  }

  /** key.one / key.other (Intl plural rules of the language), with {n} formatted. */
  function plural(key, n, vars) {
    const form = new Intl.PluralRules(CG.lang === "fr" ? "fr-FR" : "en-GB").select(n);
    const k = `${key}.${form}` in strings[CG.lang] || `${key}.${form}` in strings.fr ? `${key}.${form}` : `${key}.other`;
    return t(k, { n: fmtNum(n), ...(vars || {}) });
  }

  function addStrings(tables) {
    for (const lang of LANGS) Object.assign(strings[lang], tables[lang] || {});
  }

  function setLang(lang) {
    if (!LANGS.includes(lang) || lang === CG.lang) return;
    CG.lang = lang;
    try { localStorage.setItem(LANG_KEY, lang); } catch (_) { /* the choice lasts this page only */ }
    rememberLang();
    applyLang();
    for (const fn of langListeners) safely(fn, lang);
    rerender();
  }

  // the login form (served by the collector) speaks the page's language: it reads this cookie
  function rememberLang() {
    document.cookie = `cg_lang=${CG.lang}; path=/control/; max-age=31536000; SameSite=Strict`;
  }

  function locale() { return CG.lang === "fr" ? "fr-FR" : "en-GB"; }

  // -- formats (always Europe/Paris) ---------------------------------------------------------------

  function toDate(x) {
    if (x === null || x === undefined || x === "") return null;
    const d = x instanceof Date ? x : new Date(x);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  const dayKey = (d) => d.toLocaleDateString("en-CA", { timeZone: TZ });

  /**
   * style "short" (default): the time today, else day/month and time; "time": hours and minutes;
   * "seconds": with seconds; "datetime": full date and time. null -> "—".
   */
  function fmtTime(x, style) {
    const d = toDate(x);
    if (!d) return MISSING;
    const hm = { hour: "2-digit", minute: "2-digit" };
    const opts = {
      time: hm,
      seconds: { ...hm, second: "2-digit" },
      datetime: { day: "2-digit", month: "2-digit", year: "numeric", ...hm },
    }[style || "short"];
    if (opts) return d.toLocaleString(locale(), { timeZone: TZ, ...opts });
    if (dayKey(d) === dayKey(new Date())) return d.toLocaleTimeString(locale(), { timeZone: TZ, ...hm });
    return d.toLocaleString(locale(), { timeZone: TZ, day: "2-digit", month: "2-digit", ...hm });
  }

  /** style "short" (default) dd/mm/yyyy; "long": 4 December 2026; "month": December 2026. */
  function fmtDate(x, style) {
    const d = toDate(x);
    if (!d) return MISSING;
    const opts = {
      long: { day: "numeric", month: "long", year: "numeric" },
      month: { month: "long", year: "numeric" },
    }[style] || { day: "2-digit", month: "2-digit", year: "numeric" };
    return d.toLocaleDateString(locale(), { timeZone: TZ, ...opts });
  }

  /** A number in the language's form; `digits` fixed decimals; null, NaN, Infinity -> "—". */
  function fmtNum(n, digits) {
    if (typeof n !== "number" || !Number.isFinite(n)) return MISSING;
    const opts = digits === undefined ? { maximumFractionDigits: 3 } : { minimumFractionDigits: digits, maximumFractionDigits: digits };
    return n.toLocaleString(locale(), opts);
  }

  // -- router --------------------------------------------------------------------------------------

  /**
   * CG.route("name", render) serves #/name/arg1/arg2 (render(el, ["arg1", "arg2"])). A name may have
   * several segments, "*" matching any one ("commune/*\/charts" serves #/commune/21231/charts with args
   * ["21231"]); the route of most segments wins. "" is the overview: #/ and an empty hash.
   */
  function route(name, render) {
    const pattern = name ? name.split("/") : [];
    const i = routes.findIndex((r) => r.pattern.join("/") === pattern.join("/"));
    if (i >= 0) routes.splice(i, 1);
    routes.push({ pattern, render });
    if (view) rerender();
  }

  function hasRoute(name) { return routes.some((r) => r.pattern.join("/") === name); }

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, "");
    return raw ? raw.split("/").map((p) => { try { return decodeURIComponent(p); } catch (_) { return p; } }) : [];
  }

  function match(segments) {
    let best = null;
    for (const r of routes) {
      if (r.pattern.length > segments.length || (!r.pattern.length && segments.length)) continue;
      if (!r.pattern.every((p, i) => p === "*" || p === segments[i])) continue;
      if (!best || r.pattern.length > best.route.pattern.length) {
        const wild = r.pattern.map((p, i) => (p === "*" ? segments[i] : null)).filter((x) => x !== null);
        best = { route: r, args: [...wild, ...segments.slice(r.pattern.length)] };
      }
    }
    return best;
  }

  function go(hash) {
    if (location.hash !== hash) location.hash = hash;
    else rerender();
  }

  function rerender() {
    if (!view) return;
    if (typeof cleanup === "function") safely(cleanup);
    cleanup = null;
    const segments = parseHash();
    const found = match(segments);
    const ticket = ++rendering;
    view.replaceChildren();
    view.dataset.route = found ? found.route.pattern.join("/") : "unknown";
    markNav(segments[0] || "");
    if (!found) {
      view.append(el("section", { class: "card notfound" }, el("h2", {}, t("shell.notfound.title")),
        el("p", {}, t("shell.notfound.body")), el("p", {}, el("a", { href: "#/" }, t("nav.overview")))));
      return;
    }
    // each rendering gets its own pane: a view still drawing when the operator moves on (its data
    // came late) draws into a pane no longer in the page, never over the next view
    const pane = document.createElement("div");
    pane.className = "route-pane";
    view.append(pane);
    try {
      const out = found.route.render(pane, found.args);
      if (out && typeof out.then === "function") {
        out.then((fn) => { if (ticket === rendering) cleanup = fn; else if (typeof fn === "function") safely(fn); })
          .catch((err) => showError(err));
      } else {
        cleanup = out;
      }
    } catch (err) {
      showError(err);
    }
  }

  function showError(err) {
    console.error(err);
    view.append(el("p", { class: "error", role: "alert" }, t("shell.error", { detail: err && (err.detail || err.message) || String(err) })));
  }

  function markNav(first) {
    for (const a of document.querySelectorAll("#nav a[data-route]")) {
      if (a.dataset.route === first) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
  }

  // -- the JSON API ----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, type, title, detail, doc) {
      super(detail || title || `HTTP ${status}`);
      Object.assign(this, { name: "ApiError", status, type, title, detail, doc });
    }
  }

  function toLogin() {
    location.assign(`/control/login?next=${encodeURIComponent(location.pathname + location.search + location.hash)}`);
  }

  /** fetch `path` as JSON (a body is sent as JSON); a problem document throws CG.ApiError; 401 logs in. */
  async function api(path, opts) {
    const { method = "GET", body, signal, headers } = opts || {};
    const init = { method, signal, credentials: "same-origin", headers: { Accept: "application/json", ...(headers || {}) } };
    if (body !== undefined) {
      init.body = typeof body === "string" || body instanceof FormData ? body : JSON.stringify(body);
      if (!(body instanceof FormData)) init.headers["Content-Type"] = "application/json";
    }
    const resp = await fetch(path, init);
    const type = resp.headers.get("Content-Type") || "";
    const isJson = /json/.test(type);
    const doc = resp.status === 204 ? null : isJson ? await resp.json().catch(() => null) : await resp.text();
    if (resp.ok) return doc;
    if (resp.status === 401 && CG.me.login) toLogin();  // the session ended: log in again, then come back
    const p = doc && typeof doc === "object" ? doc : {};
    throw new ApiError(resp.status, p.type || "about:blank", p.title || resp.statusText, p.detail || (typeof doc === "string" ? doc.slice(0, 300) : ""), doc);
  }

  /**
   * apiAll(path, ...members): every page of a paginated route (its answer's `next`, collector.params.page_of),
   * the first page's document with each of `members` (lists) holding all the pages' rows; `next` null.
   */
  async function apiAll(path, ...members) {
    const doc = await api(path);
    for (let next = doc.next, pages = 1; next && pages < 100; pages += 1) {
      const more = await api(next);
      for (const m of members) doc[m] = (doc[m] || []).concat(more[m] || []);
      next = more.next;
    }
    doc.next = null;
    return doc;
  }

  // -- the live stream -------------------------------------------------------------------------------

  /** CG.on("summary" | "change" | "live", fn) -> a function that stops listening. */
  function on(name, fn) {
    if (!listeners.has(name)) listeners.set(name, new Set());
    listeners.get(name).add(fn);
    return () => listeners.get(name).delete(fn);
  }

  function emit(name, data) {
    last.set(name, data);
    for (const fn of [...(listeners.get(name) || [])]) safely(fn, data);
  }

  function safely(fn, ...args) {
    try { return fn(...args); } catch (err) { console.error(err); return undefined; }
  }

  function setLive(state) {
    const live = document.getElementById("live");
    if (!live) return;
    live.dataset.state = state;
    document.getElementById("live-text").textContent = live.title = t(`shell.live.${state}`);  // the dot alone on a narrow screen
    emit("live", state);
  }

  /**
   * applyDelta(doc, delta, rows, key): a new document, `doc` with a stream's `delta` applied (the
   * server's collector.dashboard.routes.delta): each member of `delta` replaces the document's (null
   * removes it), but `rows` (a list of objects keyed by `key`) takes the changed rows, `removed` the
   * keys of rows gone, `order` every row's key in order when it moved.
   */
  function applyDelta(doc, delta, rows, key) {
    const out = { ...doc };
    for (const [k, v] of Object.entries(delta)) {
      if (k === rows || k === "removed" || k === "order") continue;
      if (v === null) delete out[k];
      else out[k] = v;
    }
    const byKey = new Map((doc[rows] || []).map((r) => [r[key], r]));
    for (const r of delta[rows] || []) byKey.set(r[key], r);
    for (const k of delta.removed || []) byKey.delete(k);
    const order = delta.order || (doc[rows] || []).map((r) => r[key]);  // the server sends it when a row came
    out[rows] = order.filter((k) => byKey.has(k)).map((k) => byKey.get(k));
    return out;
  }

  function connect() {
    // the summary comes whole once, then only what changed (summary-delta): the listeners get it whole
    const source = new EventSource("/control/api/stream?delta=1");
    source.addEventListener("open", () => setLive("open"));
    source.addEventListener("error", () => setLive("error"));
    const parse = (e) => { try { return JSON.parse(e.data); } catch (_) { return undefined; } };
    source.addEventListener("summary", (e) => { const data = parse(e); if (data !== undefined) emit("summary", data); });
    source.addEventListener("summary-delta", (e) => {
      const data = parse(e);
      const known = last.get("summary");
      if (data !== undefined && known) emit("summary", applyDelta(known, data, "communes", "insee"));
    });
    source.addEventListener("change", (e) => { const data = parse(e); if (data !== undefined) emit("change", data); });
    CG.source = source;
  }

  // -- confirmation dialog and toasts ------------------------------------------------------------------

  /**
   * CG.confirm({title, body, confirmLabel, danger, reason}) -> Promise<{ok, reason}>: a modal <dialog>
   * (focus stays inside, Esc cancels); with `reason: true` a reason must be written to confirm.
   */
  function confirm(opts) {
    const { title, body, confirmLabel, danger = false, reason = false } = opts || {};
    return new Promise((resolve) => {
      const opener = document.activeElement;
      const id = `cg-dialog-${Date.now()}`;
      const why = reason ? el("textarea", { id: `${id}-reason`, rows: "3", required: true, maxlength: "500" }) : null;
      const ok = el("button", { type: "submit", class: danger ? "btn danger" : "btn primary", value: "ok" }, confirmLabel || t("shell.confirm.ok"));
      const cancel = el("button", { type: "button", class: "btn", value: "cancel" }, t("shell.confirm.cancel"));
      const bodyNodes = (Array.isArray(body) ? body : [body]).filter((b) => b !== undefined && b !== null)
        .map((b) => (b instanceof Node ? b : el("p", {}, b)));
      const form = el("form", { method: "dialog" },
        el("h2", { id: `${id}-title` }, title || t("shell.confirm.title")),
        el("div", { id: `${id}-body`, class: "dialog-body" }, bodyNodes),
        why ? el("label", { for: why.id }, t("shell.confirm.reason")) : null, why,
        el("div", { class: "dialog-actions" }, cancel, ok));
      const dialog = el("dialog", { class: `cg-dialog${danger ? " danger" : ""}`, "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-body` }, form);
      let answered = false;
      const done = (result) => {
        if (answered) return;
        answered = true;
        dialog.close();
        dialog.remove();
        if (opener && typeof opener.focus === "function") opener.focus();
        resolve(result);
      };
      cancel.addEventListener("click", () => done({ ok: false, reason: "" }));
      dialog.addEventListener("cancel", (e) => { e.preventDefault(); done({ ok: false, reason: "" }); });  // Esc
      dialog.addEventListener("keydown", (e) => {  // Tab cycles inside: never out to the browser's own bar
        if (e.key !== "Tab") return;
        const stops = [...dialog.querySelectorAll("button, textarea, input, select, a[href]")].filter((n) => !n.disabled);
        const [first, lastStop] = [stops[0], stops[stops.length - 1]];
        if (e.shiftKey && document.activeElement === first) { e.preventDefault(); lastStop.focus(); }
        else if (!e.shiftKey && document.activeElement === lastStop) { e.preventDefault(); first.focus(); }
      });
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        if (why && !why.value.trim()) { why.focus(); return; }
        done({ ok: true, reason: why ? why.value.trim() : "" });
      });
      document.body.append(dialog);
      dialog.showModal();  // the rest of the page is inert: Tab stays in the dialog
      (why || cancel).focus();
    });
  }

  /** CG.toast(message, kind "info" | "ok" | "error"): read out by screen readers, gone after a while. */
  function toast(message, kind) {
    const box = document.getElementById("toasts");
    const item = el("div", { class: `toast ${kind || "info"}` }, message);
    box.append(item);
    setTimeout(() => item.remove(), kind === "error" ? 10_000 : 5_000);
    return item;
  }

  // -- the header ------------------------------------------------------------------------------------

  function applyLang() {
    document.documentElement.lang = CG.lang;
    document.title = t("shell.title");
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    for (const node of document.querySelectorAll("[data-t-label]")) node.setAttribute("aria-label", t(node.dataset.tLabel));
    for (const b of document.querySelectorAll("#lang button")) b.setAttribute("aria-pressed", String(b.dataset.lang === CG.lang));
    showTerritory();
    const live = document.getElementById("live");
    if (live) document.getElementById("live-text").textContent = t(`shell.live.${live.dataset.state}`);
  }

  function showTerritory() {
    const h1 = document.getElementById("territory");
    const doc = last.get("summary");
    if (!doc || !doc.territory) {
      h1.textContent = t("shell.brand");
      return;
    }
    // "<territory> — control centre": the second part goes on a narrower screen (app.css)
    const [place, what] = t("shell.territory", { territory: "\u0000" }).split("\u0000");
    h1.replaceChildren(el("span", { class: "what-before" }, place), doc.territory, el("span", { class: "what" }, what));
  }

  function showMe() {
    const who = document.getElementById("who");
    const name = document.getElementById("operator-name");
    name.textContent = CG.me.name || "";
    who.hidden = !CG.me.login;
    document.body.dataset.roles = CG.me.roles.join(" ");
  }

  async function loadMe() {
    try {
      const me = await api("/control/api/me");
      CG.me = { name: me.name, roles: me.roles || [], login: Boolean(me.login) };
    } catch (err) {
      console.error(err);  // the page works without it: nobody named, no role
    }
    showMe();
  }

  function start() {
    view = document.getElementById("view");
    for (const b of document.querySelectorAll("#lang button")) b.addEventListener("click", () => setLang(b.dataset.lang));
    applyLang();
    rememberLang();
    on("summary", showTerritory);
    window.addEventListener("hashchange", () => { rerender(); view.focus({ preventScroll: true }); });
    connect();
    CG.ready = loadMe().then(rerender);
  }

  const CG = {
    lang: pickLang(),
    t, plural, strings: addStrings, setLang,
    /** whether some module gave a string for `key` (one module may word another's codes when it can) */
    hasString: (key) => key in strings[CG.lang] || key in strings.fr, onLang: (fn) => { langListeners.add(fn); return () => langListeners.delete(fn); },
    fmtTime, fmtDate, fmtNum, TZ, MISSING,
    route, hasRoute, go, rerender, args: parseHash,
    api, apiAll, ApiError,
    on, last: (name) => last.get(name), applyDelta,
    confirm, toast, el,
    me: { name: null, roles: [], login: false },
    can: (role) => CG.me.roles.includes(role),
    widgets: {},
    panels: [],
    /** a card the overview shows below its own (the traffic, cameras and parking panels) */
    panel: (card) => { CG.panels.push(card); if (view && view.dataset.route === "") rerender(); },
  };
  window.CG = CG;

  addStrings({
    fr: {
      "shell.title": "Centre de contrôle — citygate",
      "shell.brand": "Centre de contrôle",
      "shell.skip": "Aller au contenu",
      "shell.territory": "{territory} — centre de contrôle",
      "shell.sub": "Éclairage public, eau, énergie et signalements",
      "shell.nav": "Navigation principale",
      "nav.overview": "Vue d'ensemble",
      "nav.map": "Carte",
      "nav.alarms": "Alarmes",
      "nav.reports": "Signalements",
      "shell.lang": "Langue",
      "shell.logout": "Se déconnecter",
      "shell.operator": "Opérateur",
      "shell.live.connecting": "Connexion…",
      "shell.live.open": "En direct",
      "shell.live.error": "Reconnexion…",
      "shell.notfound.title": "Page introuvable",
      "shell.notfound.body": "Cette page n'existe pas ou n'est pas encore disponible.",
      "shell.error": "Impossible d'afficher cette page : {detail}",
      "shell.confirm.title": "Confirmer",
      "shell.confirm.ok": "Confirmer",
      "shell.confirm.cancel": "Annuler",
      "shell.confirm.reason": "Motif (obligatoire)",
      "shell.toasts": "Notifications",
      "shell.footer": "Données : citygate-collector · mises à jour en direct",
    },
    en: {
      "shell.title": "Control centre — citygate",
      "shell.brand": "Control centre",
      "shell.skip": "Skip to content",
      "shell.territory": "{territory} — control centre",
      "shell.sub": "Street lighting, water, energy and residents' reports",
      "shell.nav": "Main navigation",
      "nav.overview": "Overview",
      "nav.map": "Map",
      "nav.alarms": "Alarms",
      "nav.reports": "Reports",
      "shell.lang": "Language",
      "shell.logout": "Log out",
      "shell.operator": "Operator",
      "shell.live.connecting": "Connecting…",
      "shell.live.open": "Live",
      "shell.live.error": "Reconnecting…",
      "shell.notfound.title": "Page not found",
      "shell.notfound.body": "This page does not exist or is not available yet.",
      "shell.error": "Cannot show this page: {detail}",
      "shell.confirm.title": "Confirm",
      "shell.confirm.ok": "Confirm",
      "shell.confirm.cancel": "Cancel",
      "shell.confirm.reason": "Reason (required)",
      "shell.toasts": "Notifications",
      "shell.footer": "Data: citygate-collector · live updates",
    },
  });

  // every module's script has run by DOMContentLoaded (they come after this one, without defer)
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
