"""The review web page: one self-contained HTML file (styles and script inline, nothing fetched from elsewhere)."""

from __future__ import annotations

# `__NONCE__` is replaced by the server's script nonce (its Content-Security-Policy allows that script only).
# Every value from the review file is put into the page with textContent, never parsed as HTML.
PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>dialc review</title>
<style>
  :root { --fg: #1d2330; --muted: #5f6b7a; --line: #d9dee5; --bg: #f5f7fa; --card: #fff;
          --accept: #1f7a3d; --reject: #b3261e; --pending: #8a6d00; --focus: #2f5fd0; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
         background: var(--bg); }
  header { position: sticky; top: 0; z-index: 2; background: var(--card); border-bottom: 1px solid var(--line);
           padding: 10px 20px; display: flex; gap: 18px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 16px; margin: 0; }
  header .file { color: var(--muted); font-family: ui-monospace, monospace; font-size: 12px; }
  .counts span { margin-right: 12px; font-weight: 600; }
  .keys { color: var(--muted); font-size: 12px; }
  kbd { border: 1px solid var(--line); border-bottom-width: 2px; border-radius: 3px; padding: 0 4px;
        font: 11px ui-monospace, monospace; background: var(--bg); }
  #status { margin-left: auto; font-size: 12px; color: var(--muted); }
  #status.error { color: var(--reject); font-weight: 600; }
  main { max-width: 980px; margin: 0 auto; padding: 4px 20px 40px; }
  .card { background: var(--card); border: 1px solid var(--line); border-left: 5px solid var(--pending);
          border-radius: 6px; padding: 8px 14px; margin: 8px 0; }
  .card[data-decision="accept"] { border-left-color: var(--accept); }
  .card[data-decision="reject"] { border-left-color: var(--reject); opacity: .75; }
  .card.current { outline: 2px solid var(--focus); outline-offset: 1px; }
  .head { display: flex; gap: 10px; align-items: center; }
  .head .meta { min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .cid { font-family: ui-monospace, monospace; font-weight: 600; }
  .badge { font-size: 11px; font-weight: 700; text-transform: uppercase; padding: 1px 7px; border-radius: 9px;
           color: #fff; background: var(--pending); }
  .badge.accept { background: var(--accept); } .badge.reject { background: var(--reject); }
  .meta { color: var(--muted); font-size: 12px; }
  .row { display: grid; grid-template-columns: 80px 1fr; gap: 2px 10px; margin-top: 3px; }
  .label { color: var(--muted); font-size: 12px; padding-top: 1px; }
  .instruction { font-size: 15px; font-weight: 500; white-space: pre-wrap; line-height: 1.35; }
  .original { color: var(--muted); white-space: pre-wrap; }
  .output { font-family: ui-monospace, monospace; font-size: 12px; background: var(--bg); padding: 2px 6px;
            border-radius: 3px; white-space: pre-wrap; }
  details summary { cursor: pointer; color: var(--muted); font-size: 12px; }
  pre.dialogue { margin: 4px 0 0; padding: 6px 8px; background: var(--bg); border-radius: 4px; max-height: 180px;
                 overflow: auto; font: 12px/1.4 ui-monospace, monospace; white-space: pre-wrap; }
  textarea { width: 100%; min-height: 64px; font: inherit; font-size: 15px; padding: 6px;
             border: 1px solid var(--focus); border-radius: 4px; }
  .actions { margin-left: auto; display: flex; gap: 6px; flex: none; }
  button { font: inherit; font-size: 12px; padding: 3px 10px; border: 1px solid var(--line); border-radius: 4px;
           background: var(--card); cursor: pointer; }
  button.accept { color: var(--accept); } button.reject { color: var(--reject); }
  .conflict { margin-top: 6px; padding: 5px 8px; border-radius: 4px; background: #fff4e5; color: #7a4500;
              font-size: 12px; border: 1px solid #f0c27b; }
  .empty { color: var(--muted); text-align: center; margin-top: 40px; }
</style>
</head>
<body>
<header>
  <h1>dialc review</h1>
  <span class="file" id="file"></span>
  <span class="counts" id="counts"></span>
  <span class="keys"><kbd>j</kbd>/<kbd>k</kbd> move · <kbd>a</kbd> accept · <kbd>r</kbd> reject ·
    <kbd>e</kbd> edit · <kbd>Ctrl</kbd>+<kbd>Enter</kbd> save edit · <kbd>Esc</kbd> cancel · <kbd>u</kbd> undo</span>
  <span id="status" role="status"></span>
</header>
<main id="list"></main>
<script nonce="__NONCE__">
"use strict";
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const view = { rows: [], cursor: 0, editing: null, conflicts: {}, busy: false, open: new Set() };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function setStatus(text, error) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.className = error ? "error" : "";
}

async function api(method, url, body) {
  const response = await fetch(url, { method, headers: { "X-Dialc-Token": TOKEN, "Content-Type": "application/json" },
                                      body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
  let data = {};
  try { data = await response.json(); } catch (e) { /* an empty or non-JSON answer */ }
  return { status: response.status, data };
}

async function refresh(scroll = true) {
  const { status, data } = await api("GET", "api/state");
  if (status !== 200) { setStatus(data.error || ("cannot read the review file (HTTP " + status + ")"), true); return; }
  document.getElementById("file").textContent = data.file;
  view.rows = data.rows;
  view.cursor = Math.min(view.cursor, Math.max(view.rows.length - 1, 0));
  render(scroll);
}

function field(label, node) { return el("div", { class: "row" }, el("div", { class: "label", text: label }), node); }

function card(row, index) {
  const editing = view.editing === row.id;
  const node = el("section", { class: "card" + (index === view.cursor ? " current" : ""), "data-id": row.id,
                               "data-decision": row.decision });
  node.addEventListener("click", () => markCurrent(index));  // no re-render: a <details> toggles as clicked
  const meta = [row.operator && ("operator " + row.operator), row.parent && ("of " + row.parent),
                row.category].filter(Boolean).join(" · ");
  const head = el("div", { class: "head" }, el("span", { class: "cid", text: row.id }),
                  el("span", { class: "badge " + row.decision, text: row.decision }),
                  el("span", { class: "meta", text: meta }));
  node.append(head);
  if (editing) {
    const area = el("textarea", { class: "edit", "aria-label": "instruction" });
    area.value = row.instruction;
    node.append(field("candidate", area));
  } else {
    node.append(field("candidate", el("div", { class: "instruction", text: row.instruction })));
  }
  if (row.original) node.append(field("source task", el("div", { class: "original", text: row.original })));
  node.append(field("output", el("div", { class: "output", text: row.output || "(not recorded)" })));
  const dialogue = row.dialogue;
  node.append(field("dialogue", dialogue && dialogue.text
    ? el("details", Object.assign({ ontoggle: (e) => view.open[e.target.open ? "add" : "delete"](row.id) },
                                  view.open.has(row.id) ? { open: "" } : {}),
         el("summary", { text: (dialogue.id || "") + (dialogue.scenario ? " (" + dialogue.scenario + ")" : "")
                               + " — check the candidate is answerable from it" }),
         el("pre", { class: "dialogue", text: dialogue.text }))
    : el("div", { class: "meta", text: "none: set `context = SOURCE` in the evolve declaration "
                                       + "to check candidates against a dialogue" })));
  const conflict = view.conflicts[row.id];
  if (conflict) node.append(el("div", { class: "conflict", text: conflict }));
  const actions = editing
    ? [el("button", { class: "accept", text: "Save & accept (Ctrl+Enter)", onclick: () => saveEdit(row) }),
       el("button", { text: "Cancel (Esc)", onclick: () => { view.editing = null; render(); } })]
    : [el("button", { class: "accept", text: "Accept (a)", onclick: () => decide(row, "accept") }),
       el("button", { class: "reject", text: "Reject (r)", onclick: () => decide(row, "reject") }),
       el("button", { text: "Edit (e)", onclick: () => startEdit(row) }),
       row.decision !== "pending" ? el("button", { text: "Undo (u)", onclick: () => decide(row, "pending") }) : null];
  head.append(el("div", { class: "actions" }, ...actions));
  return node;
}

function render(scroll = true) {
  const list = document.getElementById("list");
  list.replaceChildren(...view.rows.map(card));
  if (!view.rows.length) list.append(el("p", { class: "empty", text: "No candidates in this review file." }));
  const counts = { pending: 0, accept: 0, reject: 0 };
  for (const row of view.rows) counts[row.decision] = (counts[row.decision] || 0) + 1;
  document.getElementById("counts").replaceChildren(
    el("span", { id: "count-pending", text: counts.pending + " pending" }),
    el("span", { id: "count-accept", text: counts.accept + " accepted" }),
    el("span", { id: "count-reject", text: counts.reject + " rejected" }));
  const current = list.querySelector(".card.current");
  if (current && scroll) current.scrollIntoView({ block: "nearest" });
  const area = list.querySelector("textarea.edit");
  if (area) { area.focus(); area.setSelectionRange(area.value.length, area.value.length); }
}

async function save(row, decision, instruction) {
  if (view.busy) return false;
  view.busy = true;
  try {
    const seen = { decision: row.decision, instruction: row.instruction };
    const { status, data } = await api("POST", "api/decide", { id: row.id, decision, instruction, seen });
    if (status === 200) {
      delete view.conflicts[row.id];
      setStatus("saved: " + decision + " " + row.id);
    } else if (status === 409) {
      const now = data.row || {};
      view.conflicts[row.id] = "Changed elsewhere meanwhile: now " + now.decision + " — \u201c" + now.instruction
        + "\u201d. Your " + (instruction ? "edit" : decision) + " was not saved; do it again to apply it.";
      setStatus("conflict on " + row.id, true);
    } else {
      setStatus(data.error || ("not saved (HTTP " + status + ")"), true);
    }
    await refresh();
    return status === 200;
  } catch (e) {
    setStatus("not saved: the dialc review server cannot be reached", true);
    return false;
  } finally {
    view.busy = false;
  }
}

async function decide(row, decision) {
  if (await save(row, decision, null) && decision !== "pending") move(1);
}

function startEdit(row) { view.editing = row.id; render(); }

async function saveEdit(row) {
  const area = document.querySelector("textarea.edit");
  const text = area ? area.value.trim() : "";
  if (!text) { setStatus("the instruction cannot be empty", true); return; }
  view.editing = null;
  if (await save(row, "accept", text)) move(1);
}

function markCurrent(index) {
  view.cursor = index;
  document.querySelectorAll("section.card").forEach((node, i) => node.classList.toggle("current", i === index));
}

function move(step) {
  if (!view.rows.length) return;
  view.cursor = Math.max(0, Math.min(view.rows.length - 1, view.cursor + step));
  render();
}

document.addEventListener("keydown", (event) => {
  const row = view.rows[view.cursor];
  if (view.editing) {
    const editing = view.rows.find((r) => r.id === view.editing);
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && editing) {
      event.preventDefault();
      saveEdit(editing);
    } else if (event.key === "Escape") { event.preventDefault(); view.editing = null; render(); }
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey || !row && !["j", "k"].includes(event.key)) return;
  const keys = { j: () => move(1), ArrowDown: () => move(1), k: () => move(-1), ArrowUp: () => move(-1),
                 a: () => decide(row, "accept"), r: () => decide(row, "reject"), u: () => decide(row, "pending"),
                 e: () => startEdit(row) };
  const action = keys[event.key];
  if (action) { event.preventDefault(); action(); }
});

// other pages and the terminal may decide too: pick up their decisions (never while an edit is open)
setInterval(() => { if (!view.editing && !view.busy && !document.hidden) refresh(false); }, 3000);
refresh();
</script>
</body>
</html>
"""
