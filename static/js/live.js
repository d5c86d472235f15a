// Live events over WebSockets: toasts for the logged-in player, live rows on boards.
// Reconnects with exponential backoff (1 s doubling to 30 s, with jitter) after drops.
// Refusals (docs/live.md, "Close codes") are final: retrying cannot help.
(function () {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const body = document.body;
  // 4401 signed out (the session ended), 4403 not allowed, 4404 no such board or season.
  // 4429 (rate limited) is not among them: it is retried with the backoff below.
  const REFUSED = new Set([4401, 4403, 4404]);

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
        body.dataset.live = REFUSED.has(closed.code) ? "refused" : "off";
        if (REFUSED.has(closed.code)) return;
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

  // --- The friends' feed (the dashboard) ------------------------------------------------
  // A friend's new activity (feed.updated) or a friend passing you reloads the feed's first
  // page, once a second at most: the event says nothing of what happened, the page reads
  // the feed under its privacy rules (docs/feed.md).
  const feed = document.querySelector("[data-feed-live]");
  let feedReload = null;
  function reloadFeed() {
    if (!feed || feedReload) return;
    feedReload = setTimeout(async () => {
      try {
        const response = await fetch(feed.dataset.feedLive, { credentials: "same-origin" });
        if (response.ok) {
          const page = new DOMParser().parseFromString(await response.text(), "text/html");
          const fresh = page.querySelector("[data-feed]");
          if (fresh) feed.replaceChildren(...fresh.children);
        }
      } catch (e) {
        // The next event tries again.
      }
      feedReload = null;
    }, 1000);
  }

  if (body.dataset.player) {
    connect("/ws/me/", (event) => {
      const data = event.data;
      if (event.type === "feed.updated" || event.type === "rival.passed") reloadFeed();
      if (event.type === "achievement.unlocked") {
        const a = data.achievement;
        toast("Achievement unlocked!", `${a.name} · ${a.points} pts · ${a.rarity}`, "unlocked");
      } else if (event.type === "award.earned") {
        toast(data.kind === "mastered" ? "Game mastered!" : "Game beaten!", data.game.name, "award");
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
      const row = data.player_id ? namedRow(data) : anonymousRow(data);
      if (!row) {
        refresh();
        return;
      }
      row.dataset.points = data.points;
      row.children[2].textContent = data.points;
      row.classList.add("moved");
      setTimeout(() => row.classList.remove("moved"), 2000);
      rerank();
    });

    function newRow(data) {
      const row = document.createElement("tr");
      row.dataset.row = "";
      if (data.player_id) row.dataset.player = data.player_id;
      row.innerHTML = '<td class="rank"></td><td></td><td class="num"></td>';
      row.children[1].textContent = data.username;
      tbody.appendChild(row);
      return row;
    }

    function namedRow(data) {
      return tbody.querySelector(`tr[data-player="${CSS.escape(data.player_id)}"]`) || newRow(data);
    }

    // A non-public player's move is anonymous (no id), so it cannot say which row moved.
    // Anonymous rows at one rank look alike, so any of them is that row; a newly ranked
    // player, or one from below this page, is a new row. If none matches, the row is one
    // this viewer sees named (a friend, or themself): the table is fetched again instead.
    function anonymousRow(data) {
      if (data.rank_change === null || data.rank_change === undefined) return newRow(data);
      const before = String(data.new_rank - data.rank_change);
      const rows = [...tbody.querySelectorAll("tr[data-row]")];
      const match = rows.find((r) => !r.dataset.player && r.children[0].textContent.trim() === before);
      if (match) return match;
      const last = rows.length ? Number(rows[rows.length - 1].children[0].textContent) : 0;
      return Number(before) > last ? newRow(data) : null;
    }

    let refreshing = null;
    function refresh() {
      if (refreshing) return;
      refreshing = setTimeout(async () => {
        try {
          const response = await fetch(location.href, { credentials: "same-origin" });
          if (response.ok) {
            const page = new DOMParser().parseFromString(await response.text(), "text/html");
            const fresh = page.querySelector("table[data-board-stream] tbody");
            if (fresh) tbody.replaceChildren(...fresh.children);
          }
        } catch (e) {
          // The next move tries again.
        }
        refreshing = null;
      }, 1000);
    }

    function rerank() {
      // Order by points (stable: earlier achievers keep their place), then competition ranks.
      const rows = [...tbody.querySelectorAll("tr[data-row]")];
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
