// Helpers of the new-session, tasks and conflicts pages (on top of
// common.js). Text from agents and repositories goes through el() and
// textContent only.
"use strict";

let toastTimer = null;

/** Shows `text` in #toast for a while; `bad` marks an error. */
function toast(text, bad) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.classList.toggle("bad", !!bad);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, bad ? 10000 : 4000);
}

/** Shows `text` in #error (hidden when empty). */
function showError(text) {
  const box = document.getElementById("error");
  box.textContent = text || "";
  box.hidden = !text;
}

/** The repositories tandem knows: [{id, root, name}]. */
async function repos() {
  return (await api("GET", "/api/repos")) || [];
}

/** A query parameter of this page's URL. */
function param(name) {
  return new URLSearchParams(location.search).get(name);
}

/** `+12 -3`. */
function diffstat(ins, del) {
  return "+" + (ins || 0) + " −" + (del || 0);
}

/** Session ids by repository root and name, from the live rows. */
async function sessionIds() {
  const ids = new Map();
  try {
    const snap = await api("GET", "/api/sessions");
    for (const repo of snap.repos || []) {
      for (const s of repo.sessions || []) ids.set(repo.root + "\u0000" + s.name, s.id);
    }
  } catch (_) { /* links are a convenience */ }
  return ids;
}

/** Calls `reload` after each change the supervisor pushes on
 * /api/events (at most once a second, never two at once), skipping
 * the first push: the page loaded itself. */
function reloadOnChange(reload) {
  let first = true, timer = null, running = false, again = false;
  const run = async () => {
    if (running) { again = true; return; }
    running = true;
    try { await reload(); } finally { running = false; }
    if (again) { again = false; run(); }
  };
  follow(() => {
    if (first) { first = false; return; }
    clearTimeout(timer);
    timer = setTimeout(run, 1000);
  });
}

/** Runs `redraw` (which replaces what `box` holds) and opens again the
 * <details> that were open, matched by their summary's text. */
function keepOpen(box, redraw) {
  const open = new Set([...box.querySelectorAll("details[open] > summary")].map((s) => s.textContent));
  redraw();
  for (const s of box.querySelectorAll("details > summary")) {
    if (open.has(s.textContent)) s.parentElement.open = true;
  }
}
