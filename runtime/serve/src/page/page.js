"use strict";
// The admin page's live part. Every second it reads GET /status and writes each module's
// cells in the table and the status line of its box in the graph, and each key-value
// bucket's keys and bytes; a module on probation
// gets a "Roll back" button, which sends POST /rollback/<module>. A field /status does not
// have shows as a dash, so the page works with older and newer servers alike.
(() => {
  const DASH = "\u2013";
  const PERIOD_MS = 1000;
  // The admin token, in this page's own HTML (only a page of this origin can read it).
  const tokenMeta = document.querySelector('meta[name="membrane-admin-token"]');
  const TOKEN = tokenMeta ? tokenMeta.content : "";
  const has = (v) => v !== undefined && v !== null && v !== "";
  const show = (v) => (has(v) ? String(v) : DASH);
  const num = (v) => typeof v === "number" && Number.isFinite(v);
  const size = (n) => {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  };
  const secs = (ms) => (ms >= 10000 ? Math.round(ms / 1000) : (ms / 1000).toFixed(1)) + " s";
  const live = document.getElementById("live");
  const message = document.getElementById("message");

  // Each module's row, cells, box and the last sample of its call counter.
  const rows = new Map();
  const boxes = document.querySelectorAll("svg g[data-module]");
  for (const tr of document.querySelectorAll("tr[data-module]")) {
    const name = tr.dataset.module;
    const cells = {};
    for (const el of tr.querySelectorAll("[data-field]")) cells[el.dataset.field] = el;
    const box = Array.from(boxes).find((g) => g.dataset.module === name);
    const row = {
      name, cells, box, tr,
      summary: box ? box.querySelector("[data-field=summary]") : null,
      button: tr.querySelector("button[data-rollback]"),
      pending: false,
      last: null,
    };
    if (row.button) row.button.addEventListener("click", () => rollback(row));
    rows.set(name, row);
  }

  function put(el, text, title) {
    if (!el) return;
    if (el.textContent !== text) el.textContent = text;
    if (title !== undefined && el.title !== title) el.title = title;
  }

  function state(m) {
    if (!has(m.state)) return DASH;
    let s = String(m.state);
    if (m.state === "probation" && num(m.probation_left_ms)) s += ", " + secs(m.probation_left_ms) + " left";
    if (num(m.draining) && m.draining > 0) s += " \u00b7 " + m.draining + " draining";
    return s;
  }

  // A module whose calls failed in the last minute is "failing" though its circuit is closed.
  function circuit(m) {
    return m.failing === true && m.circuit === "healthy" ? "failing" : m.circuit;
  }

  function health(m) {
    if (!has(m.circuit)) return DASH;
    let s = String(circuit(m));
    if (num(m.retry_in_ms)) s += ", retry in " + secs(m.retry_in_ms);
    if (num(m.recent_failures) && m.recent_failures > 0) {
      s += " \u00b7 " + m.recent_failures + (m.recent_failures === 1 ? " failure" : " failures");
    }
    return s;
  }

  function load(m) {
    if (!has(m.busy) && !has(m.idle)) return DASH;
    let s = show(m.busy) + " / " + show(m.idle);
    if (num(m.waiting) && m.waiting > 0) s += " \u00b7 " + m.waiting + " waiting";
    return s;
  }

  function routes(m) {
    const parts = Array.isArray(m.routes) ? m.routes.map(String) : [];
    if (m.entry === true) parts.push("entry");
    return parts.length ? parts.join(" ") : DASH;
  }

  function ms(v) {
    return (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2)) + " ms";
  }

  // The last minute: calls, the share that failed by kind, p50 and p99.
  function recent(m) {
    const r = m.last_minute;
    if (!r || typeof r !== "object" || !num(r.calls)) return DASH;
    if (r.calls === 0) return "no calls";
    let s = r.calls + (r.calls === 1 ? " call" : " calls");
    const failures = r.failures && typeof r.failures === "object" ? Object.entries(r.failures) : [];
    const failed = failures.reduce((n, [, c]) => n + (num(c) ? c : 0), 0);
    if (failed > 0) {
      s += ", " + Math.round((failed * 100) / r.calls) + "% failed (" +
        failures.map(([k, c]) => c + " " + k).join(", ") + ")";
    }
    if (num(r.p50_ms) && num(r.p99_ms)) s += " \u00b7 p50 \u2264 " + ms(r.p50_ms) + " \u00b7 p99 \u2264 " + ms(r.p99_ms);
    return s;
  }

  function quotas(m) {
    if (!Array.isArray(m.quotas) || m.quotas.length === 0) return DASH;
    return m.quotas.map((q) => {
      const parts = [];
      if (num(q.max_bytes)) parts.push((num(q.used_bytes) ? size(q.used_bytes) : "?") + " of " + size(q.max_bytes));
      if (num(q.max_files)) parts.push((num(q.used_files) ? q.used_files : "?") + " of " + q.max_files + " files");
      return show(q.guest) + ": " + parts.join(", ");
    }).join("; ");
  }

  function hash(m) {
    if (typeof m.hash !== "string" || m.hash === "") return [DASH, ""];
    const short = /^sha256:[0-9a-f]{13,}$/.test(m.hash) ? m.hash.slice(0, 19) + "\u2026" : m.hash;
    return [short, m.hash];
  }

  function upgrade(u) {
    if (!u || typeof u !== "object") return [DASH, ""];
    const text = show(u.from) + " \u2192 " + show(u.to) + (u.ok === false ? " failed: " : ": ") + show(u.message);
    return [text, text];
  }

  // Calls per second since the previous poll; a dash until there are two samples.
  function rate(row, m, now) {
    if (!num(m.calls)) {
      row.last = null;
      return DASH;
    }
    let text = DASH;
    const last = row.last;
    if (last && now > last.at && m.calls >= last.calls) {
      const r = (m.calls - last.calls) / ((now - last.at) / 1000);
      text = (r >= 10 ? Math.round(r) : r.toFixed(1)) + "/s";
    }
    row.last = { at: now, calls: m.calls };
    return text;
  }

  function classes(box, m) {
    if (!box) return;
    for (const c of Array.from(box.classList)) {
      if (c.startsWith("state-") || c.startsWith("health-")) box.classList.remove(c);
    }
    if (has(m.state)) box.classList.add("state-" + m.state);
    if (has(m.circuit)) box.classList.add("health-" + circuit(m));
  }

  function update(row, m, now) {
    const c = row.cells;
    put(c.generation, show(m.generation));
    const [h, full] = hash(m);
    put(c.hash, h, full);
    put(c.state, state(m));
    put(c.health, health(m));
    put(c.load, load(m));
    put(c.routes, routes(m));
    put(c.recent, recent(m));
    put(c.quotas, quotas(m));
    const failing = m.failing === true;
    if (c.health) c.health.classList.toggle("failing", failing);
    row.tr.classList.toggle("failing", failing);
    put(c.calls, show(m.calls));
    put(c.rate, rate(row, m, now));
    const [u] = upgrade(m.last_upgrade);
    put(c.upgrade, u);
    put(row.summary, "gen " + show(m.generation) + " \u00b7 " + show(m.state) + " \u00b7 " + show(circuit(m)));
    classes(row.box, m);
    if (c.state) c.state.classList.toggle("probation", m.state === "probation");
    if (row.button && !row.pending) row.button.hidden = m.state !== "probation";
  }

  let polls = 0;
  let running = null;
  let timer = 0;

  async function pollOnce() {
    const started = performance.now();
    try {
      const r = await fetch("/status", { cache: "no-store", headers: { accept: "application/json" } });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const body = await r.json();
      const modules = (body && body.modules) || {};
      const now = performance.now();
      for (const [name, row] of rows) update(row, modules[name] || {}, now);
      const buckets = (body && body.buckets) || {};
      for (const tr of document.querySelectorAll("tr[data-bucket]")) {
        const b = buckets[tr.dataset.bucket] || {};
        put(tr.querySelector("[data-field=keys]"), show(b.keys), has(b.error) ? String(b.error) : "");
        put(tr.querySelector("[data-field=bytes]"), num(b.bytes) ? size(b.bytes) : DASH);
      }
      polls += 1;
      live.dataset.polls = String(polls);
      live.classList.remove("stale");
      put(live, "live \u00b7 updated " + new Date().toLocaleTimeString());
    } catch (e) {
      live.classList.add("stale");
      put(live, "status unavailable (" + e.message + "); retrying");
    }
    return started;
  }

  // One poll at a time; the next one a period after the last one started.
  function poll() {
    if (running) return running;
    clearTimeout(timer);
    running = pollOnce().then((started) => {
      running = null;
      timer = setTimeout(poll, Math.max(0, PERIOD_MS - (performance.now() - started)));
    });
    return running;
  }

  function say(text, ok) {
    message.textContent = text;
    message.classList.toggle("error", !ok);
    message.classList.toggle("ok", ok);
  }

  async function rollback(row) {
    const b = row.button;
    row.pending = true;
    b.disabled = true;
    const label = b.textContent;
    b.textContent = "Rolling back\u2026";
    try {
      const r = await fetch("/rollback/" + encodeURIComponent(row.name), {
        method: "POST",
        headers: { authorization: "Bearer " + TOKEN },
      });
      let body = null;
      try {
        body = await r.json();
      } catch (_) {
        // Not JSON: a refusal in plain text; the status says enough.
      }
      if (r.ok && body && body.ok) {
        const to = body.rolled_back || {};
        say(row.name + ": rolled back from generation " + show(to.from) + " to " + show(to.to), true);
      } else {
        const why = (body && (body.error || body.kind)) || "HTTP " + r.status;
        say(row.name + ": rollback failed: " + why, false);
      }
    } catch (e) {
      say(row.name + ": rollback failed: " + e.message, false);
    }
    b.textContent = label;
    b.disabled = false;
    row.pending = false;
    // A poll that started before the rollback would show the old state: poll after it.
    if (running) await running;
    await poll();
  }

  poll();
})();
