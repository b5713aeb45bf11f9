// The operators' dashboard: polls /api/v1/dashboard every 2 s and draws what it says.
// Served as a file, not inline, so the page's Content-Security-Policy can forbid inline script.
"use strict";
const $ = (id) => document.getElementById(id);
const polls = [];  // [{t, received, accepted, refused}] per poll
const KEEP = 60;
const fmt = (n) => n == null ? "–" : Math.round(n).toLocaleString("en");
const rate = (n) => n == null ? "–" : n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString("en");
const bytes = (n) => n == null ? "–" : n < 1e6 ? fmt(n / 1e3) + " kB" : n < 1e9 ? (n / 1e6).toFixed(1) + " MB" : (n / 1e9).toFixed(1) + " GB";
const age = (s) => s == null ? "–" : s < 3600 ? Math.floor(s / 60) + " min" : s < 172800 ? Math.floor(s / 3600) + " h" : Math.floor(s / 86400) + " d";
const counted = (n, one, many) => `${n} ${n === 1 ? one : many}`;
const secs = (s) => s == null ? "–" : s < 1 ? Math.round(s * 1000) + " ms" : s.toFixed(2) + " s";

function cell(text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "n";
  return td;
}
function rows(id, items, render, empty) {
  const body = $(id);
  body.replaceChildren();
  if (!items.length) {
    const tr = document.createElement("tr");
    const td = cell(empty);
    td.className = "empty";
    td.colSpan = 4;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const item of items) {
    const tr = document.createElement("tr");
    tr.append(...render(item));
    body.append(tr);
  }
}
function chart() {
  const svg = $("chart");
  const pts = [];
  for (let i = 1; i < polls.length; i++) {
    const a = polls[i - 1], b = polls[i], dt = (b.t - a.t) || 1;
    pts.push({received: (b.received - a.received) / dt, accepted: (b.accepted - a.accepted) / dt, refused: (b.refused - a.refused) / dt});
  }
  const top = Math.max(1, ...pts.map((p) => p.received));
  const line = (key, colour) => {
    const span = Math.max(pts.length - 1, 9);  // early on, a short line, not a dot
    const d = pts.map((p, i) => `${(i / span) * 300},${115 - (p[key] / top) * 105}`).join(" ");
    return `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${d}"/>`;
  };
  svg.innerHTML = `<line x1="0" y1="115" x2="300" y2="115" stroke="#ccd4dc"/>` +
    `<text x="2" y="12" font-size="10" fill="#5b6b7b">${rate(top)}/s</text>` +
    line("received", "#1f5f99") + line("accepted", "#23803a") + line("refused", "#b3261e");
  return pts.length ? pts[pts.length - 1] : null;
}
function show(s) {
  $("node").textContent = `node ${s.node} (${s.role})`;
  polls.push({t: s.time, ...s.totals});
  if (polls.length > KEEP) polls.shift();
  const now = chart();
  for (const k of ["received", "accepted", "refused"]) {
    $("total-" + k).textContent = fmt(s.totals[k]);
    $("rate-" + k).textContent = now ? rate(now[k]) : "–";
  }
  $("total-submissions").textContent = fmt(s.totals.submissions);
  $("streams").textContent = fmt(s.streams);
  for (const q of ["p50", "p90", "p99"]) $("lat-" + q).textContent = secs(s.latency[q]);
  rows("stages", s.stages, (x) => [cell(x.stage), cell(secs(x.p50), 1), cell(secs(x.p99), 1)], "no submission yet");
  const most = Math.max(1, ...s.refusals.map((r) => r.count));
  rows("refusals", s.refusals, (r) => {
    const bar = document.createElement("td");
    const fill = document.createElement("div");
    fill.className = "bar";
    fill.style.width = (100 * r.count / most) + "%";
    bar.append(fill);
    return [cell(r.reason), cell(fmt(r.count), 1), bar];
  }, "nothing refused");
  rows("members", s.members, (m) => {
    const who = cell(`${m.member} (${m.country})`);
    who.title = m.name;
    return [who, cell(fmt(m.received), 1), cell(fmt(m.accepted), 1), cell(fmt(m.refused), 1)];
  }, "no members");
  rows("regions", s.regions, (r) => [cell(r.name), cell(fmt(r.routed), 1)], "no regions");
  // Topic and group names share the deployment's prefix ("cirt-hub."): shown without it.
  const bare = (name) => name.slice(name.indexOf(".") + 1);
  rows("lag", s.lag, (l) => [cell(bare(l.group)), cell(`${bare(l.topic)}[${l.partition}]`), cell(fmt(l.lag), 1)], "no consumer groups on this node");
  const states = ["acknowledged", "investigating", "affected", "not-affected", "mitigated"];
  rows("open-alerts", s.open_alerts, (a) => {
    const what = cell(`${a.kind}: ${counted(a.members, "member", "members")}, ${counted(a.countries, "country", "countries")} (${a.scope})`);
    what.title = `first seen ${a.first_seen}`;
    const counts = states.map((state) => cell(fmt((a.responses || {})[state]), 1));
    return [what, cell(age(a.age_seconds), 1), ...counts, cell(fmt(a.sighted), 1)];
  }, "no open alert");
  // Reachability: who answered the latest check and how fast, who has not after N days.
  const r = s.reachability;
  $("reach").textContent = !r ? "no check yet: cirt-hub reachability start" :
    `${r.id}, started ${r.started} by ${r.by} (${r.open ? "open" : "ended"}): ` +
    `${r.answered} of ${r.members.length} answered; ` +
    (r.overdue.length ? `no answer after ${r.overdue_days} days: ${r.overdue.join(", ")}` : "none overdue");
  $("reach").className = r && r.overdue.length ? "no" : "";
  rows("reach-members", r ? r.members : [], (m) => {
    const who = cell(m.member);
    who.title = m.name;
    const answer = m.answered ? `answered (${m.via})` : m.overdue ? "OVERDUE" : "waiting";
    const state = cell(answer);
    if (m.overdue) state.className = "no";
    const took = m.answered ? (m.seconds < 60 ? m.seconds + " s" : age(m.seconds)) : "–";
    return [who, state, cell(took, 1), cell(m.by || "")];
  }, "no check yet");
  const alerts = $("alerts");
  alerts.replaceChildren();
  if (!s.alerts.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "no alert";
    alerts.append(li);
  }
  for (const a of s.alerts) {
    const li = document.createElement("li");
    li.textContent = `${a.created || ""} ${a.name}`;
    li.title = a.description;
    alerts.append(li);
  }
  const n = s.notifications;
  $("notify").textContent = `${fmt(n.sent)} delivered, ${fmt(n.pending)} waiting, ` +
    `${fmt(n.failures)} failed attempts (retried), ${fmt(n.given_up)} given up.`;
  $("notify").className = n.given_up > 0 ? "no" : "";
  const d = s.disk;
  $("disk").textContent = (d.ok ? "" : "FULL: submissions refused (503) until space returns. ") +
    `${bytes(d.free_bytes)} free of ${bytes(d.total_bytes)}; intake closes under ${bytes(d.reserve_bytes)}. ` +
    `${fmt(d.refusals)} submissions refused for space.`;
  $("disk").className = d.ok ? "" : "no";
  $("growth").textContent = `data dir ${bytes(d.bytes)}; growing ` +
    (d.growth_per_day == null ? "(measured after an hour)" : `${bytes(d.growth_per_day)} a day`) +
    (d.days_until_full == null ? "" : `; full in ${fmt(d.days_until_full)} days at this rate`);
  const k = d.kafka;
  if (k) {
    const usable = k.log_dirs.map((l) => l.usable_bytes).filter((u) => u != null);
    $("growth").textContent += `. Kafka: the hub's topics ${bytes(Object.values(k.topics).reduce((a, b) => a + b, 0))}` +
      ` in ${k.log_dirs.length} log dirs` +
      (usable.length ? ` (${bytes(Math.min(...usable))} usable in the fullest)` : "") + "; growing " +
      (k.growth_per_day == null ? "(measured after an hour)" : `${bytes(k.growth_per_day)} a day`) +
      (k.days_until_full == null ? "" : `; full in ${fmt(k.days_until_full)} days at this rate`);
  }
  const stored = [...Object.entries(d.topics || {}).map(([k, v]) => [bare(k), v]),
    ...Object.entries(d.files || {})].sort((a, b) => b[1] - a[1]).slice(0, 12);
  rows("stored", stored, ([k, v]) => [cell(k), cell(bytes(v), 1)], "nothing stored yet");
  $("updated").textContent = new Date(s.time * 1000).toLocaleTimeString();
}
async function poll() {
  try {
    const r = await fetch("/api/v1/dashboard", {credentials: "same-origin", cache: "no-store"});
    if (r.status === 401 || r.status === 403) { location.href = "/dashboard/login"; return; }
    if (r.ok) show(await r.json());
  } catch (e) {
    $("node").textContent = "hub unreachable; retrying";
  }
  setTimeout(poll, 2000);
}
poll();
