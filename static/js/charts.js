// Draws every <canvas data-chart="..."> from the JSON in the <script> its data-source names.
(function () {
  if (!window.Chart) return;
  const ink = "#9aa3c7";
  Chart.defaults.color = ink;
  Chart.defaults.borderColor = "rgba(154,163,199,.15)";
  Chart.defaults.font.family = "system-ui, sans-serif";
  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    const data = JSON.parse(document.getElementById(canvas.dataset.source).textContent);
    const kind = canvas.dataset.chart;
    const series = {
      points: { type: "line", label: "Points", values: data.points, colour: "#7c9cff", fill: true },
      unlocks: { type: "bar", label: "Unlocks per day", values: data.unlocks, colour: "#f5c451" },
      playtime: { type: "bar", label: "Hours played", values: data.playtime, colour: "#4fd18b" },
    }[kind];
    new Chart(canvas, {
      type: series.type,
      data: {
        labels: data.labels,
        datasets: [{
          label: series.label, data: series.values, borderColor: series.colour,
          backgroundColor: series.fill ? "rgba(124,156,255,.18)" : series.colour,
          fill: !!series.fill, tension: 0.25, pointRadius: 0, borderWidth: 2,
        }],
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false }, title: { display: true, text: series.label } },
        scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }
})();
