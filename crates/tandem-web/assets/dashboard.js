// The dashboard: every session, grouped as the agent view groups them
// (needs input first, with what it asks), pushed live from /api/events;
// no polling. Rows are `tandem list --json` rows: every word here (state,
// PR, changes, what would be lost) is core's, never worked out again.
// Actions go to POST /api/sessions/{id}/{action}, the CLI's own calls.
"use strict";

const GROUPS = [
  ["needs_input", "Needs input"],
  ["error", "Error"],
  ["running", "Running"],
  ["idle", "Idle"],
  ["done", "Done"],
  ["archived", "Archived"],
];

/** Actions offered in each row's menu (approve/deny/send have buttons). */
const MENU = [
  ["interrupt", "Interrupt"],
  ["stop", "Stop"],
  ["respawn", "Respawn"],
  ["fork", "Fork"],
  ["review", "Review"],
  ["sync", "Sync"],
  ["merge", "Merge"],
  ["pr", "Open PR"],
  ["push", "Push"],
  ["archive", "Archive"],
  ["remove", "Remove"],
];

/** The table's columns: a class (fixed widths, so every group lines up) and a heading. */
const COLUMNS = [
  ["who", "Session"], ["agent", "Agent"], ["state", "State"], ["branch", "Branch"], ["changes", "Changes"],
  ["diffstat", "Diff"], ["pr", "PR"], ["conflicts", "Conflicts"], ["message", "Last message"], ["actions", ""],
];

/** Menu actions that end or change something the user may not mean to: asked first. */
const CONFIRM = new Set(["stop", "merge", "pr", "push", "archive", "remove", "sync"]);

let latest = null;
let skew = 0; // server seconds minus this clock's
let rendered = false;
let waiting = null; // ids in needs_input at the last push; null before the first
const chosen = new Set(); // group chips on; empty: every group
const drafts = new Map(); // session id -> reply being typed

function $(id) { return document.getElementById(id); }

function toast(text, bad) {
  const box = $("toast");
  box.replaceChildren(el("span", {}, text));
  box.classList.toggle("bad", !!bad);
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, bad ? 12000 : 5000);
}

/** Runs `action` on session `id`; says the result in #toast. */
async function act(id, name, action, body) {
  try {
    const answer = await api("POST", "/api/sessions/" + encodeURIComponent(id) + "/" + action, body || {});
    const lines = [answer.message, ...(answer.notes || [])].filter(Boolean);
    toast(lines.join("\n") || action + ": done");
    return answer;
  } catch (e) {
    if (action === "remove" && !(body && body.force) && e.status === 409) {
      confirmRemove(id, name, e.message);
    } else {
      toast(e.message, true);
    }
    return null;
  }
}

/** The refusal sentence, and a button that removes anyway (a snapshot ref keeps the work). */
function confirmRemove(id, name, sentence) {
  const old = $("confirm");
  if (old) old.remove();
  const box = el("div", { id: "confirm", class: "confirm", role: "alertdialog", "aria-label": "remove " + name },
    el("p", {}, sentence),
    el("div", { class: "buttons" },
      el("button", { type: "button", class: "danger", "data-action": "remove-force", onclick: async () => {
        box.remove();
        await act(id, name, "remove", { force: true });
      } }, "Remove anyway (keep a snapshot)"),
      el("button", { type: "button", onclick: () => box.remove() }, "Cancel")));
  document.body.append(box);
  box.querySelector("button").focus();
}

function rowsOf(snapshot) {
  const out = [];
  const many = snapshot.repos.length > 1;
  // Remote hosts' sessions (their rows carry `host`): each row then says
  // its host, `local` for this machine's.
  const remote = (snapshot.remote && snapshot.remote.sessions) || [];
  const hosts = remote.length > 0;
  for (const repo of snapshot.repos) {
    for (const s of repo.sessions) out.push({ repo, s, many, hosts });
  }
  for (const s of remote) out.push({ repo: { root: "host:" + s.host, name: s.host }, s, many: false, hosts });
  return out;
}

/** What a remote host's row offers instead of actions: the CLI command. */
function remoteNote(s) {
  return el("div", { class: "sub remote-note" }, "on " + s.host + ": use `tandem attach " + s.host + ":" + s.name + "`");
}

function matches(item, needle, repo, agent) {
  const { s } = item;
  if (repo && item.repo.root !== repo) return false;
  if (agent && s.agent !== agent) return false;
  if (!needle) return true;
  const hay = [s.name, s.branch, s.agent, s.state_text, s.title, s.asking, s.last_message, s.pr_text, item.repo.name]
    .filter(Boolean).join(" ").toLowerCase();
  return hay.includes(needle);
}

function since(s) {
  return el("span", { class: "since", "data-since": s.since }, ago(latest.now - s.since));
}

function diffText(d) {
  if (!d || (!d.files && !d.insertions && !d.deletions)) return "";
  return "+" + d.insertions + " −" + d.deletions + " (" + d.files + (d.files === 1 ? " file)" : " files)");
}

/** What a needs-input row asks, and the buttons that answer it; also a
 * row whose agent reports no state but whose hook reported an ask (a
 * shell): it stays in its group, with the buttons. */
function askCell(s) {
  if (s.group !== "needs_input" && !(s.awaits_permission && s.asking)) return null;
  const cell = el("div", { class: "ask" }, el("div", { class: "asking" }, s.asking || s.state_text));
  if (s.awaits_permission) {
    cell.append(el("div", { class: "buttons" },
      el("button", { type: "button", class: "primary", "data-action": "approve", disabled: !!s.host, onclick: () => act(s.id, s.name, "approve") }, "Approve"),
      el("button", { type: "button", class: "danger", "data-action": "deny", disabled: !!s.host, onclick: () => act(s.id, s.name, "deny") }, "Deny")));
  } else {
    const input = el("input", { type: "text", class: "reply", "data-reply": s.id, placeholder: "reply…", "aria-label": "reply to " + s.name, autocomplete: "off", disabled: !!s.host });
    input.value = drafts.get(s.id) || "";
    input.addEventListener("input", () => drafts.set(s.id, input.value));
    const send = async () => {
      const text = input.value;
      if (!text.trim()) { toast("the reply is empty; type the answer first", true); return; }
      if (await act(s.id, s.name, "send", { text })) { drafts.delete(s.id); input.value = ""; }
    };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); send(); } });
    cell.append(el("form", { class: "buttons", onsubmit: (e) => { e.preventDefault(); send(); } },
      input, el("button", { type: "submit", class: "primary", "data-action": "send", disabled: !!s.host }, "Send")));
  }
  return cell;
}

function menu(s) {
  const select = el("select", { class: "more", "aria-label": "actions for " + s.name, disabled: !!s.host },
    el("option", { value: "" }, "Actions…"), MENU.map(([a, label]) => el("option", { value: a }, label)));
  select.addEventListener("change", async () => {
    const action = select.value;
    select.value = "";
    select.blur(); // pushes held while it was open render now
    if (!action) return;
    const label = MENU.find(([a]) => a === action)[1];
    if (CONFIRM.has(action) && !window.confirm(label + " session " + s.name + "?")) return;
    await act(s.id, s.name, action);
  });
  return select;
}

function rowOf(item, depth) {
  const { s, repo, many, hosts } = item;
  const counts = [];
  if (s.ahead) counts.push("↑" + s.ahead);
  if (s.behind) counts.push("↓" + s.behind);
  // A remote host's session has no page here: its screen is on its host.
  const link = s.host ? el("span", { class: "name" }, s.name) : el("a", { href: "/session/" + encodeURIComponent(s.id), class: "name" }, s.name);
  const conflicts = (s.conflicts_with || []).join(", ");
  return el("tr", { "data-session": s.name, "data-id": s.id, "data-group": s.group, "data-host": s.host || (hosts ? "local" : null), class: depth ? "child depth-" + Math.min(depth, 3) : null },
    el("td", { class: "who", "data-label": "Session" }, depth ? el("span", { class: "indent", "aria-hidden": "true" }, "↳ ") : null, link,
      s.title ? el("div", { class: "sub" }, s.title) : null,
      !depth && s.creator ? el("div", { class: "sub creator" }, "made by " + (typeof s.creator === "object" ? s.creator.name || s.creator.id : s.creator)) : null,
      many ? el("div", { class: "sub repo" }, repo.name) : null,
      hosts ? el("div", { class: "sub host" }, "host: " + (s.host || "local")) : null,
      askCell(s)),
    el("td", { class: "agent", "data-label": "Agent" }, s.agent),
    el("td", { class: "state state-" + s.group, "data-label": "State" }, s.group === "needs_input" && s.state_word ? s.state_word : s.state_text, " ", el("span", { class: "sub" }, "for ", since(s))),
    el("td", { class: "branch", "data-label": "Branch" }, s.branch, counts.length ? el("span", { class: "sub" }, " " + counts.join(" ")) : null),
    el("td", { class: "changes", "data-label": "Changes" }, s.changes_text || ""),
    el("td", { class: "diffstat", "data-label": "Diff" }, diffText(s.diffstat)),
    el("td", { class: "pr", "data-label": "PR" }, s.pr_text || ""),
    el("td", { class: "conflicts", "data-label": "Conflicts" }, conflicts),
    el("td", { class: "message", "data-label": "Last message" }, s.last_message && !(s.asking && s.last_message.includes(s.asking)) ? el("div", { class: "clamp", title: s.last_message }, s.last_message) : null),
    el("td", { class: "actions" }, menu(s), s.host ? remoteNote(s) : null),
  );
}

/** Sub-sessions right under the session that made them (rows with a `creator`), reviews under what they review. */
function nested(items) {
  const byId = new Map(items.map((i) => [i.s.id, i]));
  const byName = new Map(items.map((i) => [i.repo.root + "\n" + i.s.name, i]));
  const parentOf = (i) => {
    let c = i.s.creator || i.s.review_of; // a review sits under what it reviews
    if (c && typeof c === "object") c = c.id || c.name;
    if (!c) return null;
    const p = byId.get(c) || byName.get(i.repo.root + "\n" + c);
    return p && p !== i ? p : null;
  };
  const kids = new Map();
  const roots = [];
  for (const i of items) {
    const p = parentOf(i);
    if (p) { if (!kids.has(p)) kids.set(p, []); kids.get(p).push(i); } else roots.push(i);
  }
  const out = [];
  const seen = new Set();
  const walk = (i, depth) => {
    if (seen.has(i)) return;
    seen.add(i);
    out.push([i, depth]);
    for (const k of kids.get(i) || []) walk(k, depth + 1);
  };
  roots.forEach((i) => walk(i, 0));
  items.forEach((i) => walk(i, 0)); // a creator loop: shown flat
  return out;
}

function options(select, values, label) {
  const now = select.value;
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.join("\n") === values.map((v) => v[0]).join("\n")) return;
  select.replaceChildren(el("option", { value: "" }, label), values.map(([v, text]) => el("option", { value: v }, text)));
  select.value = values.some((v) => v[0] === now) ? now : "";
}

function chips(counts) {
  const box = $("chips");
  box.replaceChildren(...GROUPS.filter(([key]) => counts[key] || chosen.has(key)).map(([key, title]) =>
    el("button", { type: "button", class: "chip", "data-group": key, "aria-pressed": chosen.has(key) ? "true" : "false",
      onclick: () => { if (chosen.has(key)) chosen.delete(key); else chosen.add(key); lastView = null; render(latest); } },
    title, " ", el("span", { class: "count" }, counts[key] || 0))));
}

function notify(snapshot) {
  const now = new Map();
  // A remote host's session has no page here to open: not notified.
  for (const { s } of rowsOf(snapshot)) if (s.group === "needs_input" && !s.host) now.set(s.id, s);
  if (waiting && "Notification" in window && Notification.permission === "granted") {
    for (const [id, s] of now) {
      if (waiting.has(id)) continue;
      const note = new Notification("tandem: " + s.name + " needs input", { body: s.asking || s.state_text, tag: "tandem-" + id });
      note.onclick = () => { window.focus(); location.href = "/session/" + encodeURIComponent(id); };
    }
  }
  waiting = new Set(now.keys());
  document.title = now.size ? "(" + now.size + ") tandem" : "tandem";
}

/** A push while a row's action menu is open waits until it closes (a re-render would close it). */
function pushed(snapshot) {
  latest = snapshot;
  const open = document.activeElement;
  if (rendered && open && open.matches && open.matches("select.more")) {
    notify(snapshot);
    if (!open.dataset.deferred) {
      open.dataset.deferred = "1";
      open.addEventListener("blur", () => render(latest), { once: true });
    }
    return;
  }
  render(snapshot);
}

/** What a row shows: it is drawn again only when this changes (ages tick on by themselves). */
function rowKey(item, depth) {
  const { age_seconds: _age, last_activity: _active, ...shown } = item.s;
  return JSON.stringify([shown, depth, item.many, item.hosts, item.repo.name]);
}

let lastView = null;
let rowCache = new Map(); // session id -> { key, tr }

function render(snapshot) {
  latest = snapshot;
  skew = snapshot.now - Date.now() / 1000;
  const notes = snapshot.repos.flatMap((r) => r.notes || []).concat((snapshot.remote && snapshot.remote.notes) || []);
  const all = rowsOf(snapshot);
  options($("repo"), snapshot.repos.map((r) => [r.root, r.name + " — " + r.root]), "all repositories");
  options($("agent"), [...new Set(all.map((i) => i.s.agent))].sort().map((a) => [a, a]), "all agents");
  const needle = $("filter").value.trim().toLowerCase();
  const repo = $("repo").value;
  const agent = $("agent").value;
  const shown = all.filter((i) => matches(i, needle, repo, agent));
  const counts = {};
  for (const i of shown) counts[i.s.group] = (counts[i.s.group] || 0) + 1;
  const plan = GROUPS.filter(([key]) => !chosen.size || chosen.has(key))
    .map(([key, title]) => [key, title, nested(shown.filter((i) => i.s.group === key))])
    .filter(([, , rows]) => rows.length)
    .map(([key, title, rows]) => [key, title, rows.map(([i, depth]) => [i, depth, rowKey(i, depth)])]);

  // A push that changes nothing shown (most only age the rows) leaves
  // the page as it is: no row is drawn again under a finger or a click.
  const view = JSON.stringify([snapshot.error, notes, counts, [...chosen], all.length,
    plan.map(([key, , rows]) => [key, rows.map(([, , k]) => k)])]);
  if (view === lastView) {
    tick();
    notify(snapshot);
    return;
  }
  lastView = view;

  const errorBox = $("error");
  errorBox.hidden = !snapshot.error;
  errorBox.textContent = snapshot.error || "";
  $("notes").hidden = !notes.length;
  $("notes").replaceChildren(...notes.map((n) => el("li", {}, n)));
  chips(counts);

  // Keep what is being typed (and where) across the re-render.
  const focused = document.activeElement;
  const focusReply = focused && focused.dataset ? focused.dataset.reply : undefined;
  const caret = focusReply !== undefined ? [focused.selectionStart, focused.selectionEnd] : null;

  const groups = $("groups");
  const cache = new Map();
  let total = 0;
  const sections = plan.map(([key, title, rows]) => {
    total += rows.length;
    const trs = rows.map(([i, depth, k]) => {
      const id = (i.s.host || "") + "\n" + i.s.id; // a host's ids are its own
      const hit = rowCache.get(id);
      const tr = hit && hit.key === k ? hit.tr : rowOf(i, depth);
      cache.set(id, { key: k, tr });
      return tr;
    });
    return el("section", { class: "group", "data-group": key },
      el("h2", {}, title, " ", el("span", { class: "count" }, rows.length)),
      el("table", {},
        el("thead", {}, el("tr", {}, COLUMNS.map(([c, h]) => el("th", { class: "col-" + c }, h)))),
        el("tbody", {}, trs)));
  });
  groups.replaceChildren(...sections);
  rowCache = cache;
  tick();
  if (focusReply !== undefined) {
    const again = groups.querySelector('input[data-reply="' + CSS.escape(focusReply) + '"]');
    if (again) { again.focus(); if (caret) again.setSelectionRange(caret[0], caret[1]); }
  }
  $("empty").hidden = all.length > 0 || !!snapshot.error;
  $("none").hidden = !(all.length > 0 && total === 0);
  notify(snapshot);
  if (!rendered) {
    rendered = true;
    performance.mark("tandem-first-render");
  }
}

/** Ages tick on between pushes (this clock, set by the server's). */
function tick() {
  if (!latest) return;
  const now = Date.now() / 1000 + skew;
  for (const node of document.querySelectorAll("[data-since]")) node.textContent = ago(now - Number(node.dataset.since));
}

function notifyButton() {
  const button = $("notify");
  if (!("Notification" in window)) return;
  const update = () => {
    button.hidden = Notification.permission === "granted";
    button.disabled = Notification.permission === "denied";
    button.title = Notification.permission === "denied"
      ? "notifications are blocked for this site in the browser's settings"
      : "Notify me when a session needs input";
  };
  button.addEventListener("click", async () => {
    try { await Notification.requestPermission(); } catch (_) { /* old browsers: callback form */ }
    update();
    if (Notification.permission === "granted") toast("you will be notified when a session needs input");
  });
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["filter", "repo", "agent"]) $(id).addEventListener("input", () => { lastView = null; if (latest) render(latest); });
  notifyButton();
  follow(pushed, (up) => $("conn").classList.toggle("down", !up));
  setInterval(tick, 15000);
});
