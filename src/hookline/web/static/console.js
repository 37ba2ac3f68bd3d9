// The console's one script: the theme switch, the live tail's event stream, the chart.
// Every screen works without it except those two, which say so.
(function () {
  "use strict";
  var root = document.documentElement;

  // The theme: the operator's choice (shared with the portal), else the system's.
  var themeKey = "hookline.theme";
  function applyTheme(theme) {
    if (theme) { root.setAttribute("data-theme", theme); }
    var dark = theme ? theme === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
    var button = document.getElementById("theme-switch");
    if (button) { button.setAttribute("aria-pressed", dark ? "true" : "false"); }
  }
  var chosen = null;
  try { chosen = window.localStorage.getItem(themeKey); } catch (e) { /* storage blocked */ }
  if (chosen) { root.setAttribute("data-theme", chosen); }

  function startTail() {
    var state = document.getElementById("tail-state");
    var rows = document.getElementById("tail-rows");
    if (!state || !rows || !window.EventSource) { return; }
    var MAX_ROWS = 500;
    var source = new EventSource(state.getAttribute("data-stream"));
    source.addEventListener("open", function () { state.textContent = "Live: waiting for attempts…"; });
    source.addEventListener("attempt", function (event) {
      rows.insertAdjacentHTML("afterbegin", event.data);
      while (rows.children.length > MAX_ROWS) { rows.removeChild(rows.lastElementChild); }
      state.textContent = "Live.";
    });
    source.addEventListener("signed-out", function () {
      source.close();
      window.location.assign("/dashboard/sign-in");
    });
    source.addEventListener("error", function () {
      // The browser reconnects by itself; a 401 (session over) closes the stream for good.
      if (source.readyState === EventSource.CLOSED) {
        state.textContent = "Disconnected: reload the page (or sign in again).";
      } else {
        state.textContent = "Reconnecting…";
      }
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function drawChart() {
    var holder = document.getElementById("attempts-chart");
    // The figures travel in an attribute: htmx drops script elements from what it swaps in.
    if (!holder || !holder.getAttribute("data-chart") || !window.uPlot) { return; }
    var parsed = JSON.parse(holder.getAttribute("data-chart"));
    var names = Object.keys(parsed.series);
    var colours = { "2xx": "#1a7f37", "4xx": "#bf8700", "5xx": "#cf222e", timeout: "#8250df", connection: "#0969da", other: "#59636e" };
    var series = [{}];
    var columns = [parsed.times];
    names.forEach(function (name) {
      series.push({ label: name, stroke: colours[name] || "#59636e", width: 2, points: { show: false } });
      columns.push(parsed.series[name]);
    });
    var width = Math.max(holder.clientWidth, 300);
    // The axes in the page's text and border colours, so the chart follows the theme.
    var style = window.getComputedStyle(root);
    var text = style.getPropertyValue("--fg").trim() || "#1f2328";
    var grid = { stroke: style.getPropertyValue("--border").trim() || "#d1d9e0" };
    var axes = [{ stroke: text, grid: grid, ticks: grid }, { stroke: text, grid: grid, ticks: grid, label: "attempts / min" }];
    new window.uPlot({ width: width, height: 220, series: series, axes: axes }, columns, holder);
  }

  document.addEventListener("DOMContentLoaded", function () {
    applyTheme(chosen || root.getAttribute("data-theme"));
    var button = document.getElementById("theme-switch");
    if (button) {
      button.addEventListener("click", function () {
        var next = button.getAttribute("aria-pressed") === "true" ? "light" : "dark";
        try { window.localStorage.setItem(themeKey, next); } catch (e) { /* storage blocked */ }
        applyTheme(next);
        var holder = document.getElementById("attempts-chart");
        if (holder) { holder.textContent = ""; drawChart(); }
      });
    }
    startTail();
    drawChart();
  });
  // The overview refreshes itself (htmx): draw the new figures' chart.
  document.addEventListener("htmx:load", function () {
    if (document.getElementById("attempts-chart") && !document.querySelector("#attempts-chart .uplot")) { drawChart(); }
  });
})();
