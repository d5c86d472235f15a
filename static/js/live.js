// Live events over WebSockets: toasts for the logged-in player, live rows on boards.
// Reconnects with exponential backoff (1 s doubling to 30 s, with jitter) after drops.
(function () {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const body = document.body;

  function connect(path, onEvent) {
    let delay = 1000;
    let socket;
    function open() {
      socket = new WebSocket(`${scheme}//${location.host}${path}`);
      socket.addEventListener("open", () => { delay = 1000; body.dataset.live = "on"; });
      socket.addEventListener("message", (message) => {
        const event = JSON.parse(message.data);
        if (event.type !== "subscribed" && event.type !== "pong") onEvent(event);
      });
      socket.addEventListener("close", (closed) => {
        body.dataset.live = "off";
        if (closed.code === 4401 || closed.code === 4404) return; // refused: retrying would not help
        setTimeout(open, delay + Math.random() * 300);
        delay = Math.min(delay * 2, 30000);
      });
    }
    open();
    return () => socket;
  }

  // --- Toasts --------------------------------------------------------------------------
  let stack = document.querySelector(".toast-stack");
  if (!stack) {
    stack = document.createElement("div");
    stack.className = "toast-stack";
    stack.setAttribute("role", "status");
    stack.setAttribute("aria-live", "polite");
    body.appendChild(stack);
  }
  function toast(title, text, kind) {
    const item = document.createElement("div");
    item.className = `toast ${kind || ""}`;
    item.dataset.kind = kind || "";
    const strong = document.createElement("strong");
    strong.textContent = title;
    const line = document.createElement("div");
    line.textContent = text;
    item.append(strong, line);
    stack.appendChild(item);
    setTimeout(() => item.remove(), 8000);
  }

  function describeRank(data) {
    if (data.rank_change === null || data.rank_change === undefined) return `You are now ranked #${data.new_rank}.`;
    if (data.rank_change < 0) return `Up ${-data.rank_change} to #${data.new_rank}.`;
    return `Now #${data.new_rank}.`;
  }

  if (body.dataset.player) {
    connect("/ws/me/", (event) => {
      const data = event.data;
      if (event.type === "achievement.unlocked") {
        const a = data.achievement;
        toast("Achievement unlocked!", `${a.name} · ${a.points} pts · ${a.rarity}`, "unlocked");
      } else if (event.type === "leaderboard.updated" && data.board === "game") {
        toast("Leaderboard", describeRank(data), "rank");
      } else if (event.type === "rival.passed") {
        toast("Rival alert", `${data.rival_username} passed you in ${data.game_name} (${data.rival_points} vs ${data.your_points}).`, "rival");
      }
    });
  }

  // --- Live board rows -----------------------------------------------------------------
  const table = document.querySelector("table[data-board-stream]");
  if (table) {
    const tbody = table.querySelector("tbody");
    const limit = Number(table.dataset.limit || 100);
    connect(table.dataset.boardStream, (event) => {
      if (event.type !== "leaderboard.updated") return;
      const data = event.data;
      let row = tbody.querySelector(`tr[data-player="${data.player_id}"]`);
      if (!row) {
        row = document.createElement("tr");
        row.dataset.player = data.player_id;
        row.innerHTML = '<td class="rank"></td><td></td><td class="num"></td>';
        row.children[1].textContent = data.username;
        tbody.appendChild(row);
      }
      row.dataset.points = data.points;
      row.children[2].textContent = data.points;
      row.classList.add("moved");
      setTimeout(() => row.classList.remove("moved"), 2000);
      rerank();
    });

    function rerank() {
      // Order by points (stable: earlier achievers keep their place), then competition ranks.
      const rows = [...tbody.querySelectorAll("tr[data-player]")];
      rows.forEach((r) => { if (!r.dataset.points) r.dataset.points = r.children[2].textContent.trim(); });
      rows.sort((a, b) => Number(b.dataset.points) - Number(a.dataset.points));
      let rank = 0;
      let previous = null;
      rows.forEach((r, i) => {
        const points = Number(r.dataset.points);
        if (points !== previous) rank = i + 1;
        previous = points;
        r.children[0].textContent = rank;
        r.children[0].className = `rank rank-${rank}`;
        if (i < limit) tbody.appendChild(r); else r.remove();
      });
    }
  }
})();
