// Shared helpers for every page. Everything an agent or a repository
// wrote reaches the page through textContent or el(): never innerHTML.
"use strict";

/** An element: el("td", {class: "x", title: "t"}, "text", child, …). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : shown(String(c)));
  }
  return node;
}

/** `text` with its control characters (but newline and tab) and the
 *  characters that hide or reorder text made visible, as the CLI shows
 *  them (tandem_core::text::visible): `\e`, `\x07`, `\u{202e}`. */
function shown(text) {
  return String(text).replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]/g,
    (c) => {
      const n = c.codePointAt(0);
      if (c === "\r") return "\\r";
      if (c === "\x1b") return "\\e";
      if (n < 0x20 || n === 0x7f) return "\\x" + n.toString(16).padStart(2, "0");
      return "\\u{" + n.toString(16) + "}";
    });
}

/** Seconds as `5s`, `3m`, `2h`, `4d`. */
function ago(secs) {
  if (secs === null || secs === undefined) return "";
  secs = Math.max(0, Math.floor(secs));
  if (secs < 60) return secs + "s";
  if (secs < 3600) return Math.floor(secs / 60) + "m";
  if (secs < 86400) return Math.floor(secs / 3600) + "h";
  return Math.floor(secs / 86400) + "d";
}

/** JSON from the API; throws Error(text the server gave) with .status and .data. */
async function api(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!res.ok) {
    // The status and the answer too: remove's 409 carries `unsaved`.
    const error = new Error((data && data.error) || text || res.statusText);
    error.status = res.status;
    error.data = data;
    throw error;
  }
  return data;
}

/** Follows /api/events: calls onSessions(snapshot) on each push. */
function follow(onSessions, onState) {
  const source = new EventSource("/api/events");
  source.addEventListener("sessions", (e) => onSessions(JSON.parse(e.data)));
  source.addEventListener("open", () => onState && onState(true));
  source.addEventListener("error", () => onState && onState(false));
  return source;
}
