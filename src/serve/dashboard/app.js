// The cardform dashboard: draws /api/summary and /api/approvals, and approves a pending plan.
// Money arrives as decimal strings and is shown from those strings (digits grouped, never
// through a float); only the width of a chart bar is computed from a number.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// "1234567.50" -> "1,234,567.50"; "-3" -> "-3".
function groupDigits(s) {
  const str = String(s);
  const sign = str.startsWith("-") ? "-" : "";
  const [int, frac] = str.replace(/^[-+]/, "").split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return sign + grouped + (frac !== undefined ? "." + frac : "");
}

function money(s, currency) {
  if (s === null || s === undefined) return "–";
  return groupDigits(s) + (currency ? " " + currency : "");
}

// "2026-12-08T04:05:06.123Z" -> "2026-12-08 04:05:06 UTC".
function when(t) {
  if (!t) return "–";
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(t);
  return m ? `${m[1]} ${m[2]} UTC` : t;
}

function sum(obj) {
  return Object.values(obj || {}).reduce((a, b) => a + b, 0);
}

function fillRows(tableId, rows) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren();
  for (const cells of rows) {
    const tr = el("tr");
    for (const c of cells) tr.append(c instanceof Node ? wrapCell(c) : el("td", c));
    body.append(tr);
  }
}

function wrapCell(node) {
  if (node.tagName === "TD") return node;
  const td = el("td");
  td.append(node);
  return td;
}

function counts(tableId, obj) {
  const entries = Object.entries(obj || {});
  fillRows(tableId, entries.length ? entries.map(([k, n]) => [k, el("td", n, "num")]) : [["none", el("td", 0, "num")]]);
}

function drawMoney(days, currency) {
  const max = Math.max(1e-9, ...days.map((d) => Math.abs(Number(d.charged))));
  fillRows("money", days.map((d) => {
    const bar = el("span", null, Number(d.charged) < 0 ? "bar negative" : "bar");
    bar.style.width = `${Math.round((Math.abs(Number(d.charged)) / max) * 200)}px`;
    return [d.day, el("td", money(d.charged, currency), "num"), bar];
  }));
}

function drawSummary(s) {
  const cur = s.currency || "";
  $("cards-total").textContent = groupDigits(s.cards.total);
  $("charged-total").textContent = money(s.cards.charged, cur);
  $("orders-total").textContent = groupDigits(sum(s.orders_in_flight));
  $("drifted").textContent = groupDigits(s.live.drifted_cards);
  $("last-success").textContent = when(s.live.last_success_at);
  counts("by-status", s.cards.by_status);
  counts("by-product", s.cards.by_product);
  counts("by-label", s.cards.by_label);
  counts("orders", s.orders_in_flight);
  drawMoney(s.money_by_day, cur);
  fillRows("runs", s.runs.map((r) => [
    el("td", r.serial, "num"), when(r.at), when(r.finished_at), r.by, r.command,
    el("td", money(r.charged, r.charged ? cur : ""), "num"),
  ]));
}

function approveButton(a) {
  const b = el("button", "Approve");
  b.type = "button";
  b.dataset.id = a.id;
  b.addEventListener("click", async () => {
    b.disabled = true;
    const r = await fetch(`/api/approvals/${encodeURIComponent(a.id)}/approve`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
      credentials: "same-origin",
    });
    // Read to the end: a body left unread is aborted (and reported) when the page goes away.
    const answer = await r.text();
    if (!r.ok) say(`Approving failed: HTTP ${r.status} ${answer}`, true);
    await refresh();
  });
  return b;
}

function drawApprovals(list) {
  $("pending-total").textContent = list.filter((a) => a.status === "pending").length;
  $("approvals-empty").hidden = list.length > 0;
  fillRows("approvals", list.map((a) => {
    const status = el("td", a.status);
    status.dataset.id = a.id;
    status.className = "approval-status";
    return [
      when(a.created), status,
      el("td", a.summary.create, "num"), el("td", a.summary.update, "num"), el("td", a.summary.destroy, "num"),
      el("td", money(a.summary.fees, a.summary.currency), "num"),
      (a.reasons || []).join("; "),
      a.approved_by ? initialsOf(a.approved_by) : "–",
      a.status === "pending" ? approveButton(a) : "",
    ];
  }));
}

// Whoever approved is shown by initials only, like every person on this page.
function initialsOf(name) {
  const parts = String(name).split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  return parts.slice(0, 3).map((p) => p[0].toUpperCase()).join("") || "?";
}

function say(text, bad) {
  $("status").textContent = text;
  $("status").classList.toggle("error", !!bad);
}

async function getJson(path) {
  const r = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (r.status === 401) throw new Error("signed-out");
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function refresh() {
  try {
    const [summary, approvals] = await Promise.all([getJson("/api/summary"), getJson("/api/approvals")]);
    drawSummary(summary);
    drawApprovals(approvals.approvals || []);
    say(`Updated ${when(summary.generated_at)}`);
    document.body.dataset.loaded = "true";
  } catch (e) {
    if (e.message === "signed-out") {
      $("status").replaceChildren("Signed out: ", Object.assign(el("a", "sign in"), { href: "/login" }));
    } else {
      say(`Cannot load the figures (${e.message})`, true);
    }
  }
}

refresh();
setInterval(refresh, 30000);
