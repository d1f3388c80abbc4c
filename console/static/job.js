// Weir console: the job page and the operation page, live. Both pages are
// complete without this script; it redraws in place what the server drew
// (numbers, the graph's annotations, the throughput chart, the logs) from
// GET /jobs/{id}/live, and follows a long operation until it is done.
// Values are formatted exactly as console/job.go formats them.
"use strict";
(() => {
  const POLL_MS = 2000; // the job page's refresh
  const OP_POLL_MS = 1000; // an operation's
  const KEEP_SAMPLES = 60; // the chart's history: 2 minutes at POLL_MS
  const KEEP_LOGS = 200; // as jobLogKeep

  const fmtRate = (f) =>
    f >= 1e6 ? (f / 1e6).toFixed(2) + " M/s" : f >= 1e3 ? (f / 1e3).toFixed(1) + " k/s" : f.toFixed(0) + "/s";
  const fmtInt = (n) => Math.trunc(n).toLocaleString("en-US");
  const fmtPct = (r) => (r * 100).toFixed(0) + "%";
  const iso = (ms) => new Date(ms).toISOString(); // 2006-01-02T15:04:05.000Z
  const fmtWatermark = (ms) => (ms == null ? "–" : iso(ms).replace("T", " ").replace("Z", " UTC"));
  const fmtWatermarkClock = (ms) => (ms == null ? "–" : iso(ms).slice(11, 19));
  const fmtMillis = (ms) => ms.toFixed(1) + " ms";
  const fmtDuration = (ms) => (ms < 999.5 ? ms.toFixed(0) + "ms" : (ms / 1000).toFixed(3).replace(/\.?0+$/, "") + "s");
  const clamp01 = (f) => Math.min(Math.max(f, 0), 1);
  const bpFill = (r) => {
    r = clamp01(r);
    const mix = (a, b) => a + Math.round((b - a) * r);
    return "#" + [mix(0xf6, 0xf7), mix(0xf8, 0xb4), mix(0xfa, 0xac)].map((v) => v.toString(16).padStart(2, "0")).join("");
  };
  const bpClass = (r) => (r > 0.5 ? "bp-high" : r >= 0.1 ? "bp-mid" : "bp-low");
  const chartCeil = (f) => {
    if (f <= 10) return 10;
    const p = Math.pow(10, Math.floor(Math.log10(f)));
    for (const m of [1, 2, 5, 10]) if (f <= m * p) return m * p;
    return 10 * p;
  };
  const setText = (el, s) => {
    if (el && el.textContent !== s) el.textContent = s;
  };

  // With scripts, weir.js asks before a dangerous form is sent, so the
  // form can say it is confirmed and skip the server's confirmation page.
  for (const input of document.querySelectorAll("form[data-confirm] input[name=confirm]")) input.value = "yes";

  // poll calls fn every ms while the tab is visible (at once when it comes
  // back), one call at a time, until fn returns false.
  function poll(fn, ms) {
    let timer = null;
    let busy = false;
    let stopped = false;
    const schedule = (delay) => {
      if (!stopped && !busy && timer === null && !document.hidden) timer = setTimeout(tick, delay);
    };
    const tick = async () => {
      timer = null;
      if (stopped || document.hidden) return;
      busy = true;
      let again = true;
      try {
        again = await fn();
      } catch (e) {
        again = true; // a network hiccup: try again next time
      }
      busy = false;
      if (again === false) stopped = true;
      else schedule(ms);
    };
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        clearTimeout(timer);
        timer = null;
      } else schedule(0);
    });
    schedule(ms);
  }

  // getJSON fetches one of the console's JSON endpoints. An ended session
  // answers with the sign-in page instead: reload to get there.
  async function getJSON(url) {
    const res = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" });
    if (res.redirected || !(res.headers.get("Content-Type") || "").includes("application/json")) {
      location.reload();
      return null;
    }
    return { ok: res.ok, status: res.status, body: await res.json() };
  }

  const job = document.getElementById("job");
  if (job) followJob(job);
  const op = document.getElementById("operation");
  if (op) followOperation(op);

  function followJob(root) {
    if (root.dataset.over === "true") return; // nothing changes any more
    let after = root.dataset.after || "0";
    const generation = root.dataset.generation;
    const status = document.getElementById("job-live-status");
    const rows = new Map([...document.querySelectorAll("#job-vertices tr[data-vertex]")].map((tr) => [tr.dataset.vertex, tr]));
    const nodes = [...document.querySelectorAll("#job-graph g[data-node]")];
    const edgeRates = [...document.querySelectorAll("#job-graph text.edge-rate[data-producer]")];
    const rates = new Map([...document.querySelectorAll("#job-rates [data-rate]")].map((el) => [el.dataset.rate, el]));
    const chart = document.getElementById("job-chart");
    const logs = document.getElementById("job-logs");
    const samples = [];

    poll(async () => {
      const r = await getJSON(root.dataset.live + "?after=" + encodeURIComponent(after));
      if (!r) return false;
      if (!r.ok) {
        setText(status, "Live updates stopped: " + r.body.error);
        return r.status >= 500 || r.status === 429; // worth another try
      }
      const live = r.body;
      // A new generation (upgrade, rescale) may have another graph, and a
      // job that ended has other actions: the server draws those.
      // So may a page drawn before the tasks ran (no rows for them yet).
      const drawnBefore = live.vertices.some((v) => !rows.has(v.key));
      if (drawnBefore || String(live.generation) !== generation || ["finished", "failed", "canceled", "stopped"].includes(live.state)) {
        location.reload();
        return false;
      }
      setText(status, "");
      after = String(live.after);
      const state = document.getElementById("job-state");
      setText(state, live.state);
      if (state) state.className = "state state-" + live.state;
      setText(document.getElementById("job-restarts"), String(live.restarts));
      const byNode = new Map();
      for (const v of live.vertices) for (const n of v.nodes) byNode.set(n, v);
      updateTable(live.vertices);
      updateGraph(byNode);
      updateCheckpoints(live.checkpoints);
      samples.push({ t: Date.parse(live.time), v: new Map(live.vertices.map((v) => [v.key, v.throughput])) });
      if (samples.length > KEEP_SAMPLES) samples.shift();
      for (const v of live.vertices) setText(rates.get(v.key), fmtRate(v.throughput));
      drawChart();
      appendLogs(live.logs);
      return true;
    }, POLL_MS);

    function updateTable(vertices) {
      for (const v of vertices) {
        const tr = rows.get(v.key);
        if (!tr) continue;
        const cell = (k, s) => setText(tr.querySelector(`[data-k="${k}"]`), s);
        cell("records_in", fmtInt(v.records_in));
        cell("records_out", fmtInt(v.records_out));
        cell("in_rate", fmtRate(v.records_in_per_second));
        cell("out_rate", fmtRate(v.records_out_per_second));
        cell("bp", fmtPct(v.backpressure_ratio));
        cell("wm", fmtWatermark(v.watermark));
        cell("align", fmtMillis(v.alignment_ms));
      }
    }

    function updateGraph(byNode) {
      for (const g of nodes) {
        const v = byNode.get(g.dataset.node);
        if (!v) continue;
        const r = v.backpressure_ratio;
        g.querySelector(".node-box").setAttribute("fill", bpFill(r));
        setText(g.querySelector(".node-bp"), "bp " + fmtPct(r));
        setText(g.querySelector(".node-wm"), "wm " + fmtWatermarkClock(v.watermark));
        const bar = g.querySelector(".node-bpbar");
        bar.setAttribute("width", String(Math.round(Number(bar.dataset.full) * clamp01(r))));
        bar.setAttribute("class", "node-bpbar " + bpClass(r));
      }
      for (const t of edgeRates) {
        const v = byNode.get(t.dataset.producer);
        if (t.dataset.chained !== "true") setText(t, v ? fmtRate(v.records_out_per_second) : "–");
      }
    }

    function updateCheckpoints(cp) {
      setText(document.getElementById("cp-completed"), String(cp.completed));
      setText(document.getElementById("cp-aborted"), String(cp.aborted));
      const l = cp.latest;
      if (!l) return;
      setText(document.getElementById("cp-latest"), `#${l.id}, ${fmtBytes(l.size)}, took ${fmtDuration(l.duration_ms)}`);
      const wrap = document.getElementById("cp-latest-wrap");
      if (wrap) wrap.hidden = false;
    }

    // drawChart redraws the lines over the last KEEP_SAMPLES samples, the
    // newest at the right edge, on a scale rounded up to 1, 2 or 5.
    function drawChart() {
      if (!chart || samples.length === 0) return;
      const d = chart.dataset;
      const left = +d.left, right = +d.right, top = +d.top, bottom = +d.bottom, windowMs = +d.window * 1000;
      const now = samples[samples.length - 1].t;
      let max = 0;
      for (const s of samples) for (const v of s.v.values()) max = Math.max(max, v);
      max = chartCeil(max);
      const x = (t) => right - ((now - t) / windowMs) * (right - left);
      const y = (v) => bottom - (v / max) * (bottom - top);
      const shown = samples.filter((s) => x(s.t) >= left);
      for (const t of chart.querySelectorAll("[data-tick]")) setText(t, fmtRate((max * Number(t.dataset.tick)) / 2));
      for (const line of chart.querySelectorAll("polyline[data-series]")) {
        const k = line.dataset.series;
        const pts = shown.filter((s) => s.v.has(k)).map((s) => `${x(s.t).toFixed(1)},${y(s.v.get(k)).toFixed(1)}`);
        line.setAttribute("points", pts.join(" "));
      }
      const last = samples[samples.length - 1];
      for (const dot of chart.querySelectorAll("circle[data-series]")) {
        const v = last.v.get(dot.dataset.series);
        if (v === undefined) continue;
        dot.setAttribute("cx", String(right));
        dot.setAttribute("cy", y(v).toFixed(1));
      }
    }

    function appendLogs(lines) {
      if (!logs || lines.length === 0) return;
      // Follow the end only if the reader is there (not scrolled back).
      const atEnd = logs.scrollHeight - logs.scrollTop - logs.clientHeight < 24;
      for (const l of lines) {
        const li = document.createElement("li");
        li.dataset.level = l.level;
        const time = document.createElement("time");
        time.dateTime = l.stamp;
        time.textContent = l.clock;
        const part = (cls, text) => {
          const s = document.createElement("span");
          s.className = cls;
          s.textContent = text;
          return s;
        };
        li.append(time, " ", part("lvl", l.level), " ", part("src", l.source + (l.task ? " " + l.task : "")), " ", part("msg", l.message));
        logs.append(li);
      }
      while (logs.children.length > KEEP_LOGS) logs.firstElementChild.remove();
      if (atEnd) logs.scrollTop = logs.scrollHeight;
    }
  }

  // fmtBytes is the console's "bytes" template function.
  function fmtBytes(n) {
    if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GiB";
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
    return n + " B";
  }

  function followOperation(root) {
    if (root.dataset.done === "true") return;
    const progress = document.getElementById("operation-progress");
    poll(async () => {
      const r = await getJSON(root.dataset.poll);
      if (!r) return false;
      if (!r.ok) {
        setText(progress, "Could not follow the operation: " + r.body.error);
        return r.status >= 500 || r.status === 429;
      }
      if (r.body.done) {
        location.reload(); // the server draws the outcome
        return false;
      }
      return true;
    }, OP_POLL_MS);
  }
})();
