// The session page: the live terminal (read-only until "Take control"),
// the history with search, the diff against the base, the turns
// (checkpoints) with their diffs, rewind and undo, the pull request and
// every action. What agents and repositories wrote reaches the page
// through textContent / el(); highlighted code only through
// hljs.highlight(…).value, which escapes it.
"use strict";

const ID = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const API = "/api/sessions/" + encodeURIComponent(ID);

let row = null;          // the session's `tandem list --json` row
let rowKey = "";         // what of the row the diff depends on

// ---------- toast ----------

function toast(text, bad) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.classList.toggle("bad", !!bad);
  box.classList.add("show");
}

// ---------- the row: header, asking, PR, buttons ----------

function renderRow(r) {
  row = r;
  const err = document.getElementById("error");
  if (!r) {
    document.getElementById("name").textContent = "(removed session)";
    err.hidden = false;
    err.textContent = "This session is not listed any more (removed). Its history stays below.";
    document.getElementById("asking").hidden = true;
    return;
  }
  err.hidden = true;
  document.title = r.name + " · tandem";
  document.getElementById("name").textContent = shown(r.name);
  const state = document.getElementById("state");
  state.textContent = shown(r.state_text || r.state);
  state.className = "state state-" + r.group;
  document.getElementById("agent").textContent = r.agent;
  document.getElementById("branch").textContent = r.branch;
  const counts = [];
  if (r.ahead) counts.push("↑" + r.ahead);
  if (r.behind) counts.push("↓" + r.behind);
  const stat = r.diffstat || {};
  if (stat.insertions || stat.deletions) counts.push("+" + (stat.insertions || 0) + " −" + (stat.deletions || 0));
  document.getElementById("counts").textContent = counts.join(" ");
  document.getElementById("title").textContent = shown(r.title || "");

  // What the agent asks, and approve/deny when it waits for a permission.
  const asking = document.getElementById("asking");
  const waits = r.group === "needs_input" && !!r.asking;
  asking.hidden = !waits && !r.awaits_permission;
  document.getElementById("asking-text").textContent = shown(r.asking || "");
  for (const b of asking.querySelectorAll("button")) b.hidden = !r.awaits_permission;

  // Restore is for an archived session only, archive for a live one.
  const archived = r.group === "archived";
  for (const b of document.querySelectorAll('button[data-action="restore"]')) b.hidden = !archived;
  for (const b of document.querySelectorAll('button[data-action="archive"]')) b.hidden = archived;

  renderPr(r.pr);

  const key = [JSON.stringify(r.diffstat), r.changed, r.untracked, r.ahead, r.behind, r.state].join("|");
  if (key !== rowKey) {
    rowKey = key;
    loadDiff();
    loadTurns();
  }
}

function renderPr(pr) {
  const box = document.getElementById("pr");
  box.replaceChildren();
  if (!pr) {
    box.append(el("span", { class: "sub" }, "No pull request. "), el("span", { class: "sub" }, "Open one with the Open PR button."));
    return;
  }
  const url = typeof pr.url === "string" && /^https:\/\//.test(pr.url) ? pr.url : null;
  box.append(
    url ? el("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, "#" + pr.number) : el("span", {}, "#" + pr.number),
    " ",
    el("span", { class: "pr-state pr-" + pr.state }, String(pr.state)),
    " · checks ",
    el("span", { class: "checks checks-" + pr.checks }, String(pr.checks)),
    " · review ",
    el("span", { class: "review" }, String(pr.review)),
  );
}

async function loadRow() {
  try {
    const data = await api("GET", API);
    renderRow(data.session);
  } catch (e) {
    document.getElementById("name").textContent = "Unknown session";
    const err = document.getElementById("error");
    err.hidden = false;
    err.textContent = e.message;
  }
}

// ---------- actions ----------

/** POST an action; answers {status, data}. */
async function post(action, body) {
  const res = await fetch(API + "/" + action, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  return { status: res.status, ok: res.ok, data, text };
}

function resultText(action, data) {
  const notes = (data && data.notes) || [];
  return notes.length ? notes.join("\n") : action + ": done";
}

async function act(action, button) {
  let name = action;
  let body = {};
  if (action === "send") {
    const text = document.getElementById("prompt").value;
    if (!text.trim()) {
      toast("the prompt is empty; type the text to send", true);
      return;
    }
    body = { text };
  } else if (action === "remove") {
    body = { force: false };
  } else if (action === "remove-force") {
    name = "remove";
    body = { force: true };
  }
  if (button) button.disabled = true;
  try {
    const res = await post(name, body);
    if (res.ok) {
      toast(resultText(name, res.data));
      if (action === "send") document.getElementById("prompt").value = "";
      if (name === "remove") document.getElementById("confirm").hidden = true;
      if (res.data && "session" in res.data) renderRow(res.data.session);
    } else if (action === "remove" && res.status === 409) {
      // What would be lost, in the supervisor's words; force confirms.
      document.getElementById("confirm-text").textContent = (res.data && res.data.error) || res.text;
      document.getElementById("confirm").hidden = false;
    } else {
      toast((res.data && res.data.error) || res.text || ("HTTP " + res.status), true);
    }
  } catch (e) {
    toast(action + " failed: " + e.message, true);
  } finally {
    if (button) button.disabled = false;
  }
}

// ---------- terminal ----------

const terminal = {
  term: null,
  fit: null,
  ws: null,
  control: false,
  size: null,        // the agent's terminal size, from the server
  open: false,
};

function setControl(on) {
  terminal.control = on;
  const button = document.getElementById("take-control");
  button.textContent = on ? "Release" : "Take control";
  button.classList.toggle("primary", on);
  document.getElementById("terminal-state").textContent = on ? "in control: keys go to the agent" : "read-only";
  if (terminal.term) terminal.term.options.disableStdin = !on;
}

function send(msg) {
  if (terminal.ws && terminal.ws.readyState === WebSocket.OPEN) terminal.ws.send(JSON.stringify(msg));
}

function sendSize() {
  if (terminal.term) send({ type: "resize", rows: terminal.term.rows, cols: terminal.term.cols });
}

function connectTerminal() {
  if (terminal.open || !terminal.term) return;
  terminal.open = true;
  setControl(false);
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + API + "/terminal");
  ws.binaryType = "arraybuffer";
  terminal.ws = ws;
  terminal.term.reset();
  let said = false;
  ws.addEventListener("message", (e) => {
    if (typeof e.data !== "string") {
      terminal.term.write(new Uint8Array(e.data));
      return;
    }
    let msg;
    try { msg = JSON.parse(e.data); } catch (_) { return; }
    if (msg.type === "size") {
      terminal.size = [msg.rows, msg.cols];
      if (!terminal.control) terminal.term.resize(msg.cols, msg.rows);
    } else if (msg.type === "control") {
      setControl(!!msg.on);
    } else if (msg.type === "exited") {
      terminal.term.write("\r\n\x1b[2m[the agent ended: " + String(msg.state) + "]\x1b[0m\r\n");
    } else if (msg.type === "error") {
      said = true;
      document.getElementById("terminal-state").textContent = String(msg.message);
    }
  });
  ws.addEventListener("close", () => {
    terminal.open = false;
    terminal.ws = null;
    const why = document.getElementById("terminal-state").textContent;
    setControl(false);
    document.getElementById("terminal-state").textContent = said ? why : "not connected: the agent does not run";
  });
}

function setupTerminal() {
  const box = document.getElementById("terminal");
  if (typeof Terminal === "undefined") {
    box.textContent = "the terminal did not load";
    return;
  }
  const term = new Terminal({
    scrollback: 5000,
    fontSize: 13,
    disableStdin: true,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
    theme: { background: "#0b0d10" },
  });
  terminal.term = term;
  if (typeof FitAddon !== "undefined") {
    terminal.fit = new FitAddon.FitAddon();
    term.loadAddon(terminal.fit);
  }
  term.open(box);
  term.onData((data) => { if (terminal.control) send({ type: "input", data }); });
  term.onResize(() => { if (terminal.control) sendSize(); });
  window.addEventListener("resize", () => { if (terminal.control && terminal.fit) terminal.fit.fit(); });
  document.getElementById("take-control").addEventListener("click", () => {
    if (!terminal.ws) {
      connectTerminal();
      return;
    }
    if (terminal.control) {
      send({ type: "release" });
      setControl(false);
      if (terminal.size) term.resize(terminal.size[1], terminal.size[0]);
    } else {
      send({ type: "control" });
      setControl(true);
      if (terminal.fit) terminal.fit.fit();
      sendSize();
      term.focus();
    }
  });
  connectTerminal();
}

// ---------- history ----------

const hist = { last: 0, query: "", loading: false, again: false };
const HISTORY_KEEP = 2000;

function eventItem(e) {
  const when = new Date(e.at_ms);
  return el("li", { class: "event kind-" + e.kind, "data-event": e.id },
    el("span", { class: "when sub", title: when.toLocaleString() }, when.toLocaleTimeString()),
    el("span", { class: "kind" }, e.kind),
    el("pre", { class: "text" }, e.text));
}

async function loadHistory(fresh) {
  if (hist.loading) { hist.again = true; return; }
  hist.loading = true;
  const list = document.getElementById("history");
  try {
    if (fresh) {
      hist.last = 0;
      list.replaceChildren();
    }
    const q = hist.query;
    for (;;) {
      let url = API + "/history?limit=1000&after=" + hist.last;
      if (q) url += "&q=" + encodeURIComponent(q);
      const data = await api("GET", url);
      if (q !== hist.query) break;
      list.append(...data.events.map(eventItem));
      hist.last = data.last;
      if (data.events.length < 1000) break;
    }
    while (list.children.length > HISTORY_KEEP) list.firstElementChild.remove();
    if (!list.children.length) list.append(el("li", { class: "empty" }, q ? "no event matches" : "no events yet"));
    else list.querySelectorAll("li.empty").forEach((n) => n.remove());
  } catch (e) {
    list.replaceChildren(el("li", { class: "error" }, e.message));
  } finally {
    hist.loading = false;
    if (hist.again) {
      hist.again = false;
      loadHistory(false);
    }
  }
}

// ---------- diff ----------

let diffMode = "unified";
let diffData = null;
let diffTitle = null;    // "checkpoint N's turn" when a turn's diff is shown

/** The patch as files: {path, lines: [{t, text}], binary}. */
function parsePatch(patch) {
  const files = [];
  let file = null;
  for (const line of (patch || "").split("\n")) {
    if (line === "") continue; // the patch's last newline; context lines start with a space
    if (line.startsWith("diff --git ")) {
      file = { path: "", header: [line], lines: [] };
      files.push(file);
      continue;
    }
    if (!file) continue;
    if (!file.lines.length && !line.startsWith("@@")) {
      file.header.push(line);
      if (line.startsWith("+++ ")) file.path = line.replace(/^\+\+\+ (b\/)?/, "");
      else if (line.startsWith("--- ") && !file.path) file.path = line.replace(/^--- (a\/)?/, "");
      else if (line.startsWith("rename to ")) file.path = line.slice(10);
      continue;
    }
    file.lines.push(line);
  }
  for (const f of files) {
    if (!f.path || f.path === "/dev/null") {
      const m = /^diff --git a\/(.*) b\/(.*)$/.exec(f.header[0]);
      f.path = m ? m[2] : f.header[0];
    }
  }
  return files;
}

function languageOf(path) {
  if (typeof hljs === "undefined") return null;
  const base = path.split("/").pop().toLowerCase();
  const names = { makefile: "makefile", dockerfile: "dockerfile", "cargo.lock": "ini" };
  if (names[base]) return hljs.getLanguage(names[base]) ? names[base] : null;
  const dot = base.lastIndexOf(".");
  if (dot < 0) return null;
  const ext = base.slice(dot + 1);
  const map = { toml: "ini", h: "c", hpp: "cpp", cc: "cpp", mjs: "javascript", cjs: "javascript", jsx: "javascript", tsx: "typescript", yml: "yaml", htm: "xml", html: "xml", vue: "xml", svg: "xml" };
  const lang = map[ext] || ext;
  return hljs.getLanguage(lang) ? lang : null;
}

/** A code cell: highlighted (hljs escapes) or plain text. */
function codeCell(text, lang, cls) {
  const td = el("td", { class: "code " + (cls || "") });
  const code = el("code", {});
  if (lang && text) {
    try {
      code.innerHTML = hljs.highlight(text, { language: lang, ignoreIllegals: true }).value;
    } catch (_) {
      code.textContent = text;
    }
  } else {
    code.textContent = text;
  }
  td.append(code);
  return td;
}

function hunkStart(line) {
  const m = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function unifiedTable(file, lang) {
  const body = el("tbody", {});
  let oldNo = 0, newNo = 0;
  for (const line of file.lines) {
    if (line.startsWith("@@")) {
      [oldNo, newNo] = hunkStart(line);
      body.append(el("tr", { class: "hunk" }, el("td", { colspan: 3 }, line)));
    } else if (line.startsWith("+")) {
      body.append(el("tr", { class: "add" }, el("td", { class: "no" }), el("td", { class: "no" }, newNo++), codeCell(line.slice(1), lang, "add")));
    } else if (line.startsWith("-")) {
      body.append(el("tr", { class: "del" }, el("td", { class: "no" }, oldNo++), el("td", { class: "no" }), codeCell(line.slice(1), lang, "del")));
    } else if (line.startsWith("\\")) {
      body.append(el("tr", { class: "meta" }, el("td", { colspan: 3 }, line)));
    } else if (line.length || oldNo || newNo) {
      body.append(el("tr", { class: "ctx" }, el("td", { class: "no" }, oldNo++), el("td", { class: "no" }, newNo++), codeCell(line.slice(1), lang)));
    }
  }
  return el("table", { class: "diff-table unified" }, body);
}

function splitTable(file, lang) {
  const body = el("tbody", {});
  let oldNo = 0, newNo = 0;
  let dels = [], adds = [];
  const flush = () => {
    const n = Math.max(dels.length, adds.length);
    for (let i = 0; i < n; i++) {
      const d = dels[i], a = adds[i];
      body.append(el("tr", {},
        el("td", { class: "no" }, d ? d[0] : ""), d ? codeCell(d[1], lang, "del") : el("td", { class: "code empty" }),
        el("td", { class: "no" }, a ? a[0] : ""), a ? codeCell(a[1], lang, "add") : el("td", { class: "code empty" })));
    }
    dels = []; adds = [];
  };
  for (const line of file.lines) {
    if (line.startsWith("@@")) {
      flush();
      [oldNo, newNo] = hunkStart(line);
      body.append(el("tr", { class: "hunk" }, el("td", { colspan: 4 }, line)));
    } else if (line.startsWith("-")) {
      dels.push([oldNo++, line.slice(1)]);
    } else if (line.startsWith("+")) {
      adds.push([newNo++, line.slice(1)]);
    } else if (line.startsWith("\\")) {
      continue;
    } else if (line.length || oldNo || newNo) {
      flush();
      body.append(el("tr", { class: "ctx" },
        el("td", { class: "no" }, oldNo++), codeCell(line.slice(1), lang),
        el("td", { class: "no" }, newNo++), codeCell(line.slice(1), lang)));
    }
  }
  flush();
  return el("table", { class: "diff-table split" }, body);
}

function renderDiff() {
  const filesBox = document.getElementById("diff-files");
  const hunks = document.getElementById("diff-hunks");
  filesBox.replaceChildren();
  hunks.replaceChildren();
  const d = diffData;
  if (!d) return;
  document.getElementById("diff-summary").textContent =
    d.files.length + " file(s), +" + d.insertions + " −" + d.deletions + (diffTitle ? " in " + diffTitle : " against " + String(d.from).slice(0, 12)) + (d.truncated ? " (patch cut)" : "");
  const parsed = parsePatch(d.patch);
  const blocks = new Map();
  for (const file of parsed) {
    const lang = languageOf(file.path);
    const block = el("div", { class: "diff-file", "data-path": file.path },
      el("div", { class: "diff-path mono" }, file.path),
      file.lines.length ? (diffMode === "split" ? splitTable(file, lang) : unifiedTable(file, lang))
        : el("div", { class: "sub" }, file.header.slice(1).join("\n")));
    blocks.set(file.path, block);
    hunks.append(el("div", { class: "scroll" }, block));
  }
  for (const f of d.files) {
    const counts = f.insertions === null ? "binary" : "+" + f.insertions + " −" + f.deletions;
    const link = el("a", { href: "#", class: "mono" }, f.path);
    link.addEventListener("click", (e) => {
      e.preventDefault();
      const block = blocks.get(f.path);
      if (block) block.scrollIntoView({ block: "start" });
    });
    filesBox.append(el("li", { "data-path": f.path }, link, " ", el("span", { class: "sub" }, counts)));
  }
  if (!d.files.length) filesBox.append(el("li", { class: "empty" }, "no changes against the base"));
}

async function loadDiff() {
  try {
    diffData = await api("GET", API + "/diff");
    diffTitle = null;
    renderDiff();
  } catch (e) {
    diffData = null;
    document.getElementById("diff-files").replaceChildren(el("li", { class: "error" }, e.message));
    document.getElementById("diff-hunks").replaceChildren();
  }
}

// ---------- turns (checkpoints) ----------

let rewinding = null;    // the body of the rewind waiting for its confirmation

/** What a checkpoint is, as `tandem checkpoints` says it. */
function turnText(c) {
  if (c.cause === "turn") return c.prompt === null ? "(a turn with no prompt sent through tandem)" : c.prompt;
  if (c.cause === "rewind" && c.rewound_to !== null) return "before rewind to " + c.rewound_to;
  return "before " + c.cause;
}

/** `2 files, +10 -3`, as stat_text. */
function statText(c) {
  return (c.files === 1 ? "1 file" : c.files + " files") + ", +" + c.added + " -" + c.removed;
}

async function loadTurns() {
  const list = document.getElementById("turns-list");
  try {
    const cps = await api("GET", API + "/checkpoints");
    list.replaceChildren(...cps.map((c) => el("li", { class: "turn", "data-n": c.n },
      el("span", { class: "n mono" }, "#" + c.n),
      el("span", { class: "when sub", title: new Date(c.at_ms).toLocaleString() }, ago((Date.now() - c.at_ms) / 1000) + " ago"),
      el("span", { class: "stat mono" }, statText(c)),
      el("span", { class: "what" }, turnText(c)),
      el("button", { type: "button", class: "turn-diff", onclick: () => showTurnDiff(c.n) }, "diff"),
      el("button", { type: "button", class: "turn-rewind danger", onclick: () => askRewind(c) }, "rewind"))));
    if (!cps.length) list.append(el("li", { class: "empty" }, "No checkpoints yet: one is made each time a turn of its agent changes something."));
    document.getElementById("turns-summary").textContent = cps.length === 1 ? "1 checkpoint" : cps.length + " checkpoints";
  } catch (e) {
    list.replaceChildren(el("li", { class: "error" }, e.message));
  }
}

async function showTurnDiff(n) {
  try {
    diffData = await api("GET", API + "/checkpoints/" + n + "/diff");
    diffTitle = "checkpoint " + n + "'s turn";
    renderDiff();
    document.getElementById("diff").scrollIntoView({ block: "start" });
  } catch (e) {
    toast(e.message, true);
  }
}

function askRewind(c) {
  const name = row ? row.name : "the session";
  let text;
  if (c) {
    rewinding = { checkpoint: c.n };
    text = "Rewind " + name + " to checkpoint " + c.n + " (" + turnText(c) + ")? Its files go back as they were then; " +
      "what is there now is checkpointed first, so Undo last rewind brings it back. HEAD and the branch stay.";
    document.getElementById("rewind-yes").textContent = "Rewind";
  } else {
    rewinding = { undo: true };
    text = "Undo " + name + "'s last rewind? Its files go back as they were before it (checkpointed first, so this too can be undone).";
    document.getElementById("rewind-yes").textContent = "Undo";
  }
  document.getElementById("rewind-confirm-text").textContent = shown(text);
  document.getElementById("rewind-confirm").hidden = false;
}

async function doRewind(button) {
  const body = rewinding;
  rewinding = null;
  document.getElementById("rewind-confirm").hidden = true;
  if (!body) return;
  if (button) button.disabled = true;
  try {
    const res = await post("rewind", body);
    if (res.ok) toast(res.data.message);
    else toast((res.data && res.data.error) || res.text || ("HTTP " + res.status), true);
  } catch (e) {
    toast("rewind failed: " + e.message, true);
  } finally {
    if (button) button.disabled = false;
    loadTurns();
    loadDiff();
  }
}

// ---------- live ----------

function onSnapshot(snapshot) {
  let found = null;
  for (const repo of snapshot.repos || []) {
    for (const s of repo.sessions || []) if (s.id === ID) found = s;
  }
  if (found) {
    renderRow(found);
    loadHistory(false);
    if (found.state === "running" && !terminal.open) connectTerminal();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.body.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-action]");
    if (button) act(button.dataset.action, button);
  });
  document.getElementById("confirm-cancel").addEventListener("click", () => {
    document.getElementById("confirm").hidden = true;
  });
  document.getElementById("undo-rewind").addEventListener("click", () => askRewind(null));
  document.getElementById("rewind-yes").addEventListener("click", (e) => doRewind(e.currentTarget));
  document.getElementById("rewind-no").addEventListener("click", () => {
    rewinding = null;
    document.getElementById("rewind-confirm").hidden = true;
  });
  document.getElementById("toast").addEventListener("click", (e) => e.currentTarget.classList.remove("show"));
  document.getElementById("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) act("send", document.querySelector('button[data-action="send"]'));
  });
  const mode = document.getElementById("diff-mode");
  mode.addEventListener("click", () => {
    diffMode = diffMode === "unified" ? "split" : "unified";
    mode.dataset.mode = diffMode;
    mode.textContent = diffMode === "unified" ? "Side by side" : "Unified";
    renderDiff();
  });
  let timer = null;
  document.getElementById("history-search").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      hist.query = e.target.value.trim();
      loadHistory(true);
    }, 250);
  });
  setupTerminal();
  loadRow();
  loadHistory(true);
  loadTurns();
  follow(onSnapshot, (up) => document.getElementById("conn").classList.toggle("down", !up));
});
