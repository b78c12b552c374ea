/// The live dashboard, `GET /dashboard`: one HTML page with its CSS, script and charts inline (no
/// external assets). It polls `/dashboard/data` once a second and updates in place: a tile per
/// server with its state, the leases it was handed and its lease age, the waiting line, jobs per
/// second and wait percentiles over the last minute as small SVG charts, and the recent changes.
/// It keeps no growing state: tiles are reused by server, charts are redrawn from the fixed
/// minute, the change list is replaced.
public enum DashboardPage {
  public static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Balancer dashboard</title>
    <style>
      body { font: 14px/1.4 system-ui, sans-serif; margin: 20px; color: #1d232b; background: #f6f7f9; }
      h1 { font-size: 20px; margin: 0 0 12px; }
      .bar { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 16px; }
      .figure { background: #fff; border-radius: 8px; padding: 10px 14px; min-width: 110px;
                box-shadow: 0 1px 2px rgba(0,0,0,.08); }
      .figure b { display: block; font-size: 22px; }
      .figure span { color: #5b6573; font-size: 12px; }
      #tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));
               gap: 10px; margin-bottom: 16px; }
      .tile { border-radius: 8px; padding: 10px; color: #fff; }
      .tile .name { font-weight: 600; font-size: 15px; }
      .tile[data-state="free"] { background: #2e8b57; }
      .tile[data-state="leased"] { background: #d9822b; }
      .tile[data-state="down"] { background: #c23b3b; }
      .tile[data-state="checking"], .tile[data-state="starting"] { background: #6b7a8f; }
      .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; }
      .chart { background: #fff; border-radius: 8px; padding: 10px;
               box-shadow: 0 1px 2px rgba(0,0,0,.08); }
      .chart h2 { font-size: 13px; margin: 0 0 6px; color: #5b6573; font-weight: 600; }
      svg { width: 100%; height: 120px; }
      ol { background: #fff; border-radius: 8px; padding: 10px 10px 10px 30px; margin-top: 12px; }
      #error { color: #c23b3b; }
    </style>
    </head>
    <body>
    <h1>Balancer <small id="policy"></small> <small id="error"></small></h1>
    <div class="bar">
      <div class="figure"><b id="free">–</b><span>free servers</span></div>
      <div class="figure"><b id="waiting">–</b><span>clients waiting</span></div>
      <div class="figure"><b id="in_flight">–</b><span>leases in flight</span></div>
      <div class="figure"><b id="jobs_per_second">–</b><span>jobs/s (last minute)</span></div>
      <div class="figure"><b id="wait_p50">–</b><span>wait p50</span></div>
      <div class="figure"><b id="wait_p99">–</b><span>wait p99</span></div>
      <div class="figure"><b id="leased">–</b><span>leases issued</span></div>
      <div class="figure"><b id="reported">–</b><span>reported</span></div>
      <div class="figure"><b id="expired">–</b><span>expired</span></div>
      <div class="figure"><b id="reclaimed">–</b><span>reclaimed</span></div>
    </div>
    <div id="tiles"></div>
    <div class="charts">
      <div class="chart"><h2>Jobs per second, last minute</h2>
        <svg viewBox="0 0 600 120" preserveAspectRatio="none">
          <path id="jobs_line" fill="none" stroke="#2e6fd9" stroke-width="2"></path></svg></div>
      <div class="chart"><h2>Client wait, p50 (blue) and p99 (orange), last minute</h2>
        <svg viewBox="0 0 600 120" preserveAspectRatio="none">
          <path id="p99_line" fill="none" stroke="#d9822b" stroke-width="2"></path>
          <path id="p50_line" fill="none" stroke="#2e6fd9" stroke-width="2"></path></svg></div>
    </div>
    <ol id="events"></ol>
    <script>
    "use strict";
    const tiles = new Map();
    function text(id, value) { document.getElementById(id).textContent = value; }
    function seconds(value) {
      if (value === null || value === undefined) return "–";
      return value < 1 ? (value * 1000).toFixed(1) + " ms" : value.toFixed(2) + " s";
    }
    function path(values, top) {
      const step = 600 / Math.max(1, values.length - 1);
      let d = "";
      values.forEach((value, index) => {
        if (value === null || value === undefined) return;
        const y = 115 - (top > 0 ? value / top : 0) * 110;
        d += (d ? " L" : "M") + (index * step).toFixed(1) + " " + y.toFixed(1);
      });
      return d;
    }
    function render(data) {
      const status = data.status;
      text("policy", "(" + status.policy + ")");
      text("free", status.free);
      text("waiting", status.waiting);
      text("in_flight", status.totals.in_flight);
      text("leased", status.totals.leased);
      text("reported", status.totals.reported);
      text("expired", status.totals.expired);
      text("reclaimed", status.totals.reclaimed);
      text("jobs_per_second", data.jobs_per_second.toFixed(1));
      text("wait_p50", seconds(data.wait_p50));
      text("wait_p99", seconds(data.wait_p99));
      const seen = new Set();
      const container = document.getElementById("tiles");
      status.servers.forEach((server, index) => {
        seen.add(server.server);
        let tile = tiles.get(server.server);
        if (!tile) {
          tile = document.createElement("div");
          tile.className = "tile";
          tile.dataset.server = server.server;
          tile.innerHTML = '<div class="name"></div><div class="state"></div><div class="age"></div>';
          tiles.set(server.server, tile);
        }
        if (container.children[index] !== tile) container.insertBefore(tile, container.children[index] || null);
        tile.dataset.state = server.state;
        tile.querySelector(".name").textContent = server.server;
        tile.querySelector(".state").textContent =
          server.state + (server.removed ? " (removed)" : "") + " · " + server.leases +
          (server.leases === 1 ? " lease" : " leases");
        tile.querySelector(".age").textContent =
          server.lease_age !== undefined ? "lease " + seconds(server.lease_age) : "";
      });
      for (const [name, tile] of tiles) {
        if (!seen.has(name)) { tile.remove(); tiles.delete(name); }
      }
      const jobs = data.seconds.map(s => s.jobs);
      document.getElementById("jobs_line").setAttribute("d", path(jobs, Math.max(1, ...jobs)));
      const p99 = data.seconds.map(s => s.wait_p99 ?? null);
      const top = Math.max(0.001, ...p99.filter(v => v !== null));
      document.getElementById("p99_line").setAttribute("d", path(p99, top));
      document.getElementById("p50_line").setAttribute("d", path(data.seconds.map(s => s.wait_p50 ?? null), top));
      const list = document.getElementById("events");
      list.replaceChildren(...data.events.map(event => {
        const item = document.createElement("li");
        item.textContent = event.at + " " + event.text;
        return item;
      }));
      document.body.dataset.updated = String(Date.now());
    }
    async function tick() {
      try {
        const response = await fetch("/dashboard/data", { cache: "no-store" });
        render(await response.json());
        text("error", "");
      } catch (error) {
        text("error", "not answering");
      }
    }
    tick();
    setInterval(tick, 1000);
    </script>
    </body>
    </html>
    """#
}
