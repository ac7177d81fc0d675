// The UI's behaviour: charts (metrics, monitor figures, endpoint traffic) drawn with uPlot
// when scrolled into view, and the runs table's "Compare selected" button. No inline
// scripts: the pages' CSP forbids them.
(function () {
  "use strict";
  var COLORS = ["#1c4f9c", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285",
                "#5c940d", "#a61e4d", "#364fc7", "#e67700"];

  function numbers(values) {
    // non-finite values come as strings ("NaN", "Infinity"): gaps in the line
    return values.map(function (v) { return typeof v === "number" ? v : null; });
  }

  function fetchHistory(url) {
    return fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body.error ? body.error.message : r.statusText); }
          return body;
        });
      });
  }

  function load(card) {
    // data-source: one answer holds every line ({step, series: [{label, values}]}, no
    // series when the range is empty); data-series: one answer per line ({step, value}).
    if (card.dataset.source) {
      return fetchHistory(card.dataset.source).then(function (a) {
        return {labels: a.series.map(function (s) { return s.label; }),
                data: [a.step].concat(a.series.map(function (s) { return numbers(s.values); }))};
      });
    }
    var series = JSON.parse(card.dataset.series);
    return Promise.all(series.map(function (s) { return fetchHistory(s.url); }))
      .then(function (answers) {
        var tables = answers.map(function (a) { return [a.step, numbers(a.value)]; });
        return {labels: series.map(function (s) { return s.label; }),
                data: tables.length === 1 ? tables[0] : uPlot.join(tables)};
      });
  }

  function draw(card) {
    card.dataset.state = "loading";
    return load(card)
      .then(function (chart) {
        if (!chart.labels.length) {  // nothing to draw: say so instead of an empty chart
          card.dataset.state = "empty";
          card.querySelector(".chart-note").textContent = card.dataset.empty || "no data";
          return;
        }
        var box = card.querySelector(".plot");
        var opts = {
          width: Math.max(box.clientWidth, 200), height: 220,
          scales: {x: {time: !!card.closest(".time-charts")}},
          series: [{label: "step"}].concat(chart.labels.map(function (label, i) {
            return {label: label, stroke: COLORS[i % COLORS.length], width: 1.5,
                    spanGaps: true};
          })),
        };
        new uPlot(opts, chart.data, box);
        card.dataset.state = "drawn";
      })
      .catch(function (error) {
        card.dataset.state = "failed";
        var note = card.querySelector(".chart-note");
        note.textContent = "could not load: " + error.message;
        note.classList.add("failed");
      });
  }

  var observer = null;
  function observeCharts(root) {
    if (!observer) {
      observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          if (entry.isIntersecting) { observer.unobserve(entry.target); draw(entry.target); }
        });
      }, {rootMargin: "200px"});
    }
    root.querySelectorAll(".chart[data-series], .chart[data-source]").forEach(function (c) {
      if (!c.dataset.state) { observer.observe(c); }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-compare]");
    if (!button) { return; }
    var ids = Array.prototype.map.call(
      document.querySelectorAll("table.runs input[name=run]:checked"),
      function (box) { return box.value; });
    if (ids.length < 2) { alert("Select at least two runs to compare."); return; }
    window.location.href = "/compare?runs=" + ids.map(encodeURIComponent).join(",");
  });

  document.addEventListener("DOMContentLoaded", function () { observeCharts(document); });
  document.addEventListener("htmx:afterSwap", function (e) { observeCharts(e.target); });
})();
