// Draws every <canvas data-chart="kind" data-source="id">: the builder registered for the
// kind turns the JSON in the <script id="id"> (json_script) into a Chart.js config. The
// player's trend charts are defined here; other scripts add kinds with
// QuestboardCharts.define(kind, build) before the page has loaded (analytics.js).
(function () {
  if (!window.Chart) return;
  const ink = "#9aa3c7";
  Chart.defaults.color = ink;
  Chart.defaults.borderColor = "rgba(154,163,199,.15)";
  Chart.defaults.font.family = "system-ui, sans-serif";

  const palette = ["#7c9cff", "#f5c451", "#4fd18b", "#be78ff", "#ff6b7a", "#5fd3e6", "#d99a6c", "#c9d2e3"];
  const builders = {};

  function define(kind, build) {
    builders[kind] = build;
  }

  // One dataset; `fill` shades the area under a line.
  function dataset(label, values, colour, options) {
    const fill = !!(options && options.fill);
    return Object.assign({
      label: label, data: values, borderColor: colour,
      backgroundColor: fill ? "rgba(124,156,255,.18)" : colour,
      fill: fill, tension: 0.25, pointRadius: 0, borderWidth: 2,
    }, options || {});
  }

  // A Chart.js config: a titled chart of `datasets` over `labels`; `options` overrides.
  function chart(type, title, labels, datasets, options) {
    const base = {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: datasets.length > 1 }, title: { display: true, text: title } },
      scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
    };
    return { type: type, data: { labels: labels, datasets: datasets }, options: merge(base, options || {}) };
  }

  function merge(into, from) {
    for (const key of Object.keys(from)) {
      const value = from[key];
      if (value && typeof value === "object" && !Array.isArray(value) && into[key] && typeof into[key] === "object") {
        merge(into[key], value);
      } else {
        into[key] = value;
      }
    }
    return into;
  }

  function single(type, label, key, colour, fill) {
    return (data) => chart(type, label, data.labels, [dataset(label, data[key], colour, { fill: fill })]);
  }

  define("points", single("line", "Points", "points", "#7c9cff", true));
  define("unlocks", single("bar", "Unlocks per day", "unlocks", "#f5c451", false));
  define("playtime", single("bar", "Hours played", "playtime", "#4fd18b", false));

  function draw() {
    const sources = {};
    for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
      const build = builders[canvas.dataset.chart];
      if (!build) continue;
      const id = canvas.dataset.source;
      if (!(id in sources)) sources[id] = JSON.parse(document.getElementById(id).textContent);
      new Chart(canvas, build(sources[id], canvas));
    }
  }

  window.QuestboardCharts = { define: define, chart: chart, dataset: dataset, palette: palette };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    window.setTimeout(draw, 0);
  }
})();
