// The new-session form: `tandem new --bg` through POST /api/sessions;
// on success the browser goes to the new session's page.
"use strict";

function value(id) {
  return document.getElementById(id).value;
}

async function fillRepos() {
  const select = document.getElementById("repo");
  let list = [];
  try {
    list = await repos();
  } catch (e) {
    showError(e.message);
    return;
  }
  const wanted = param("repo");
  select.replaceChildren(...list.map((r) =>
    el("option", { value: r.root, selected: r.root === wanted || String(r.id) === wanted }, r.name + " — " + r.root)));
  if (!list.length) {
    showError("tandem knows no repository yet: run `tandem new` in one once, then it is listed here.");
  }
}

async function submit(event) {
  event.preventDefault();
  showError("");
  const choice = value("agent");
  const body = {
    repo: value("repo"),
    name: value("name"),
    agent: choice === "other" ? value("agent-other") : choice,
    base: value("base"),
    title: value("title"),
    prompt: value("prompt"),
    sandbox: value("sandbox"),
  };
  if (choice === "other" && !body.agent.trim()) {
    showError("give the agent's command line, or pick an agent from the list");
    return;
  }
  const button = document.getElementById("create");
  button.disabled = true;
  button.textContent = "Creating…";
  try {
    const made = await api("POST", "/api/sessions", body);
    for (const note of made.notes || []) toast(note);
    location.assign("/session/" + encodeURIComponent(made.id));
  } catch (e) {
    showError(e.message);
    button.disabled = false;
    button.textContent = "Create session";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  fillRepos();
  const agent = document.getElementById("agent");
  agent.addEventListener("change", () => {
    const other = document.getElementById("agent-other");
    other.hidden = agent.value !== "other";
    if (!other.hidden) other.focus();
  });
  document.getElementById("new-form").addEventListener("submit", submit);
});
