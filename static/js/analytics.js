// The studio analytics charts (templates/analytics/game.html): kinds for charts.js, each
// drawn from {"report": <the API's JSON>, "labels": {<bucket labels, as the tables name them>}}.
(function () {
  const charts = window.QuestboardCharts;
  if (!charts) return;
  const { chart, dataset, palette } = charts;
  const days = (data) => data.report.days.map((d) => d.date);
  const hours = (seconds) => (seconds === null ? null : Math.round(seconds / 36) / 100);
  const percentAxis = { y: { beginAtZero: true, suggestedMax: 100, ticks: { precision: undefined } } };

  charts.define("active-players", (data) => chart("line", "Active players", days(data), [
    dataset("Daily (DAU)", data.report.days.map((d) => d.active_players), palette[0]),
    dataset("Weekly (WAU)", data.report.days.map((d) => d.weekly_active_players), palette[1]),
    dataset("Monthly (MAU)", data.report.days.map((d) => d.monthly_active_players), palette[2]),
  ]));

  charts.define("new-returning", (data) => chart("bar", "New and returning players", days(data), [
    dataset("New", data.report.days.map((d) => d.new_players), palette[2]),
    dataset("Returning", data.report.days.map((d) => d.returning_players), palette[0]),
  ], { scales: { x: { stacked: true }, y: { stacked: true } } }));

  charts.define("stickiness", (data) => chart("line", "Stickiness (DAU / MAU, %)", days(data), [
    dataset("Stickiness", data.report.days.map((d) => d.stickiness), palette[3], { spanGaps: true }),
  ], { scales: percentAxis }));

  charts.define("daily-unlocks", (data) => chart("bar", "Unlocks per day", days(data), [
    dataset("Unlocks", data.report.days.map((d) => d.unlocks), palette[1]),
  ]));

  charts.define("daily-playtime", (data) => chart("bar", "Hours played per day", days(data), [
    dataset("Hours", data.report.days.map((d) => hours(d.playtime_seconds)), palette[2]),
  ], { scales: { y: { ticks: { precision: undefined } } } }));

  charts.define("achievement-drift", (data) => chart("line", "Unlocked by (% of players)", days(data),
    data.report.achievements.map((a, i) => dataset(a.name, a.series, palette[i % palette.length])),
    { scales: percentAxis }));

  charts.define("time-to-unlock", (data) => {
    const rows = data.report.time_to_unlock;
    return chart("bar", "Time to unlock (hours)", rows.map((r) => r.name), [
      dataset("Median", rows.map((r) => hours(r.median_seconds)), palette[0]),
      dataset("90th percentile", rows.map((r) => hours(r.p90_seconds)), palette[4]),
    ], { indexAxis: "y", scales: { x: { beginAtZero: true }, y: { ticks: { maxTicksLimit: 50 } } } });
  });

  charts.define("time-to-unlock-histogram", (data) => {
    const bounds = data.labels.time_to_unlock;
    const rows = data.report.time_to_unlock.filter((r) => r.samples > 0);
    return chart("line", "Unlocks by time to unlock", bounds.map((b) => b.label), rows.map((r, i) => {
      const counts = new Map(r.histogram.map((b) => [b.upto_seconds, b.count]));
      return dataset(r.name, bounds.map((b) => counts.get(b.upto_seconds) || 0), palette[i % palette.length]);
    }));
  });

  charts.define("funnel", (data) => {
    const steps = data.report.funnel.steps;
    return chart("bar", "Progression funnel (% of players)", steps.map((s) => s.name), [
      dataset("Reached", steps.map((s) => s.reached_percent), palette[0]),
      dataset("Stopped here", steps.map((s) => s.stopped_percent), palette[4]),
    ], { indexAxis: "y", scales: { x: { beginAtZero: true, suggestedMax: 100 }, y: { ticks: { maxTicksLimit: 50 } } } });
  });

  charts.define("completion", (data) => chart("bar", "Players by completion", data.labels.completion, [
    dataset("Players", data.report.completion.map((b) => b.players), palette[3]),
  ]));

  charts.define("playtime-distribution", (data) => chart("bar", "Players by total playtime", data.labels.playtime, [
    dataset("Players", data.report.playtime.map((b) => b.players), palette[2]),
  ]));
})();
