// Live dashboard: the tally pushed over /v1/tally/stream (Server-Sent Events),
// falling back to polling /v1/tally with If-None-Match once a second.
// Three views of one script: /dashboard (a filter by trade), /dashboard?display=wall
// (a hall's screen: the award places held, the others in turns, no controls) and
// /embed/board?top=N (a partner's iframe: the first N places).
// Plain browser JavaScript, no build step, no network beyond this service (site.js says where).
(function () {
  "use strict";

  var api = window.votesvc.api;
  var DEFAULT_SEATS = 10; // until the campaign's rules say (rules.award_seats)
  var POLL_MS = 1000;
  var FETCH_TIMEOUT_MS = 4000;
  var STREAM_RETRY_MS = 10000;
  var RATE_MINUTES = 10;
  var TURN_MS = 10000; // wall: each page of the other nominees shows this long
  var WALL_ROW_MIN = 28; // px: legible across a hall
  var WALL_ROW_MAX = 72;
  var WALL_REST_ROW = 44;

  var query = new URLSearchParams(location.search);
  var embed = document.body.dataset.page === "embed-board";
  var wall = !embed && query.get("display") === "wall";
  var top = embed ? Math.max(1, parseInt(query.get("top"), 10) || 0) : 0; // 0: the award seats

  var state = {
    campaign: null,
    trades: [],
    filter: "",
    tally: null,
    etag: null,
    source: null, // the EventSource while we have one
    polling: false,
    pollTimer: 0,
    retryTimer: 0,
    samples: [], // {t, total}: the total seen at client time t, one per change
    rows: {}, // nominee id -> its <li>
    turn: 0, // wall: which page of the other nominees shows
  };

  function seats() {
    var rules = state.campaign && state.campaign.rules;
    return (rules && rules.award_seats) || DEFAULT_SEATS;
  }

  function $(id) {
    return document.getElementById(id);
  }

  function setText(id, text) {
    var element = $(id);
    if (element) element.textContent = text;
  }

  var numberFormat = new Intl.NumberFormat("zh-CN");
  var timeFormat = null;

  function fmt(n) {
    return numberFormat.format(n);
  }

  function clock(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    if (!timeFormat) {
      var options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
      try {
        options.timeZone = (state.campaign && state.campaign.timezone) || "Asia/Shanghai";
        timeFormat = new Intl.DateTimeFormat("zh-CN", options);
      } catch (e) {
        delete options.timeZone;
        timeFormat = new Intl.DateTimeFormat("zh-CN", options);
      }
    }
    return timeFormat.format(date);
  }

  function timedFetch(path, options) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, FETCH_TIMEOUT_MS);
    options = options || {};
    options.signal = controller.signal;
    options.cache = "no-store";
    return fetch(api(path), options).finally(function () { clearTimeout(timer); });
  }

  // ---- connection state -------------------------------------------------

  function setState(name, mode, detail) {
    document.body.dataset.state = name;
    if (mode !== undefined) document.body.dataset.mode = mode;
    setText("status-text", {
      connecting: "正在连接…",
      live: document.body.dataset.mode === "push" ? "实时推送" : "每秒刷新",
      unreachable: "服务暂不可达",
    }[name]);
    var alert = $("alert");
    if (name === "unreachable") {
      alert.textContent = detail || "服务暂不可达，正在自动重连…";
      alert.hidden = false;
    } else {
      alert.hidden = true;
    }
  }

  function unreachable(detail) {
    setState("unreachable", undefined, detail);
    renderRate();
  }

  function accept(tally) {
    state.tally = tally;
    var last = state.samples[state.samples.length - 1];
    if (!last || last.total !== tally.total) state.samples.push({ t: Date.now(), total: tally.total });
    if (tally.stale) {
      unreachable("计票服务暂时无法读取票数，页面显示的是 " + clock(tally.as_of) + " 的数据，正在自动重连…");
    } else {
      setState("live");
    }
    render();
  }

  // ---- push stream, with polling as the fallback --------------------------

  function openStream() {
    clearTimeout(state.retryTimer);
    if (state.source || !window.EventSource) {
      if (!window.EventSource) startPolling();
      return;
    }
    var source = new EventSource(api("/v1/tally/stream"));
    state.source = source;
    source.onmessage = function (event) {
      var tally;
      try {
        tally = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      stopPolling();
      document.body.dataset.mode = "push";
      accept(tally);
    };
    source.onerror = function () {
      // Closed by the server, refused (503), or the network is gone: poll, and try again later.
      source.close();
      if (state.source === source) state.source = null;
      startPolling();
      state.retryTimer = setTimeout(openStream, STREAM_RETRY_MS);
    };
  }

  function startPolling() {
    if (state.polling) return;
    state.polling = true;
    document.body.dataset.mode = "poll";
    poll();
  }

  function stopPolling() {
    state.polling = false;
    clearTimeout(state.pollTimer);
  }

  function poll() {
    var headers = {};
    if (state.etag) headers["If-None-Match"] = state.etag;
    timedFetch("/v1/tally", { headers: headers })
      .then(function (response) {
        if (!state.polling) return null;
        if (response.status === 304) {
          if (state.tally && !state.tally.stale) setState("live");
          return null;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        state.etag = response.headers.get("ETag");
        return response.json().then(accept);
      })
      .catch(function () {
        if (state.polling) unreachable("无法连接投票服务，页面显示的是最后收到的数据，正在自动重连…");
      })
      .finally(function () {
        if (state.polling) state.pollTimer = setTimeout(poll, POLL_MS);
      });
  }

  // ---- campaign and filter ------------------------------------------------

  function loadCampaign() {
    timedFetch("/v1/nominees")
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        state.campaign = data.campaign;
        timeFormat = null;
        setText("title", data.campaign.title);
        document.title = (embed ? "得票排行 · " : "实时榜单 · ") + data.campaign.title;
        var seen = {};
        data.nominees.forEach(function (n) {
          if (!seen[n.trade]) {
            seen[n.trade] = true;
            state.trades.push(n.trade);
          }
        });
        var places = top || seats();
        setText("subtitle", embed
          ? "得票前 " + places + " 名 · 前 " + seats() + " 名获“最受欢迎”奖"
          : "实时榜单 · 得票前 " + seats() + " 名获“最受欢迎”奖");
        setText("cut-label", "获奖线（第 " + seats() + " 名）");
        setText("legend-in", "暂列前 " + seats() + " 名");
        renderFilters();
        render();
      })
      .catch(function () {
        setTimeout(loadCampaign, 2000);
      });
  }

  function renderFilters() {
    var box = $("filters");
    if (!box) return;
    state.trades.forEach(function (trade) {
      var chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.dataset.trade = trade;
      chip.setAttribute("aria-pressed", "false");
      chip.textContent = trade;
      box.appendChild(chip);
    });
    box.addEventListener("click", function (event) {
      var chip = event.target.closest(".chip");
      if (!chip) return;
      state.filter = chip.dataset.trade;
      box.querySelectorAll(".chip").forEach(function (c) {
        c.setAttribute("aria-pressed", String(c === chip));
      });
      render();
    });
    box.addEventListener("scroll", chipsHint, { passive: true });
    window.addEventListener("resize", chipsHint);
    chipsHint();
  }

  // On a phone the chips scroll sideways: a fade at the edge where more of them wait.
  function chipsHint() {
    var box = $("filters");
    var more = [];
    if (box.scrollLeft > 1) more.push("start");
    if (box.scrollLeft + box.clientWidth < box.scrollWidth - 1) more.push("end");
    box.parentNode.dataset.more = more.join(" ");
  }

  // ---- the chart ------------------------------------------------------------

  // Where the award line falls: the last seat's votes, and whether a tie straddles it.
  // A tie at zero votes is no contest: nobody has won a place yet.
  function cutLine(nominees) {
    if (nominees.length <= seats()) return null;
    var votes = nominees[seats() - 1].votes;
    var tied = nominees.filter(function (n) { return n.votes === votes; });
    var first = tied[0].rank;
    return {
      votes: votes,
      straddles: votes > 0 && nominees[seats()].votes === votes,
      first: first,
      count: tied.length,
      seats: seats() - first + 1,
    };
  }

  // "in": holds a seat for now; "tie": tied across the line; "out"; "open": nobody has votes.
  function standing(n, index, cut, total) {
    if (total === 0) return index < seats() ? "open" : "out";
    if (n.votes === 0) return "out";
    if (!cut || n.votes > cut.votes) return "in";
    if (n.votes === cut.votes) return cut.straddles ? "tie" : "in";
    return "out";
  }

  function rowFor(n) {
    var row = state.rows[n.id];
    if (row) return row;
    row = document.createElement("li");
    row.className = "row";
    row.dataset.id = n.id;
    row.innerHTML =
      '<span class="rank"></span>' +
      '<span class="who"><span class="name"></span><span class="trade"></span></span>' +
      '<span class="track"><span class="bar"></span><span class="votes"></span>' +
      '<span class="badge">同票待定</span></span>';
    row.querySelector(".name").textContent = n.name;
    row.querySelector(".trade").textContent = n.trade;
    state.rows[n.id] = row;
    return row;
  }

  // The award line, and under it the tie rule in one sentence. While nobody has votes it
  // only says where the line is.
  function cutElement(cut) {
    var line = $("cut");
    if (!line) {
      line = document.createElement("li");
      line.id = "cut";
      line.className = "cut";
      line.innerHTML = '<span class="cut-label"></span><span class="cut-rule"></span>';
      line.lastChild.textContent = "票数相同时，先达到这一票数的候选人排名靠前。";
    }
    var text = "获奖线 · 前 " + seats() + " 名（暂定）";
    if (cut && cut.straddles) {
      text += " · 并列第 " + cut.first + " 名的 " + cut.count + " 人同为 " + fmt(cut.votes) +
        " 票，争" + (cut.seats === 1 ? "最后 1 个名额" : "最后 " + cut.seats + " 个名额");
    }
    line.firstChild.textContent = text;
    line.dataset.tie = String(Boolean(cut && cut.straddles));
    return line;
  }

  function render() {
    var tally = state.tally;
    if (!tally) return;
    var nominees = tally.nominees;
    var leader = nominees.length ? nominees[0].votes : 0;
    var cut = tally.total > 0 ? cutLine(nominees) : null;
    var shares = {};
    nominees.forEach(function (n) { shares[n.rank] = (shares[n.rank] || 0) + 1; });
    var places = {};
    nominees.forEach(function (n, i) { places[n.id] = standing(n, i, cut, tally.total); });
    var visible = nominees.filter(function (n) {
      return !state.filter || n.trade === state.filter;
    });
    if (embed) visible = visible.slice(0, top || seats()); // a tie past the last shows as 并列
    var lineAfter = -1; // the index in `visible` of the last row above the award line
    visible.forEach(function (n, i) {
      var row = rowFor(n);
      var status = places[n.id];
      row.dataset.status = status;
      row.dataset.votes = String(n.votes);
      row.dataset.rank = String(n.rank);
      var rank = row.querySelector(".rank");
      if (tally.total === 0) {
        rank.textContent = "";
      } else if (shares[n.rank] > 1) {
        rank.innerHTML = "<small>并列</small>";
        rank.appendChild(document.createTextNode("第" + n.rank));
      } else {
        rank.textContent = String(n.rank);
      }
      row.querySelector(".votes").textContent = fmt(n.votes);
      row.querySelector(".bar").style.setProperty("--share", String(leader ? n.votes / leader : 0));
      row.title = n.name + " · " + n.trade + " · " +
        (tally.total === 0 ? "暂无得票" : (shares[n.rank] > 1 ? "并列" : "") + "第 " + n.rank + " 名 · " +
          fmt(n.votes) + " 票");
      if (status !== "out") lineAfter = i;
    });
    var drawn = {};
    visible.forEach(function (n) { drawn[n.id] = true; });
    Object.keys(state.rows).forEach(function (id) {
      var row = state.rows[id];
      if (!drawn[id] && row.parentNode) row.parentNode.removeChild(row);
    });
    // The line goes where it truly falls: above a row below it, or after the last row
    // above it when the rows shown end there.
    var lastIn = -1;
    nominees.forEach(function (n, i) { if (places[n.id] !== "out") lastIn = i; });
    var withLine = lineAfter >= 0 && lastIn < nominees.length - 1 && (
      visible.slice(lineAfter + 1).some(function (n) { return places[n.id] === "out"; }) ||
      visible[lineAfter].id === nominees[lastIn].id);
    var rows = visible.map(function (n) { return state.rows[n.id]; });
    if (wall) placeOnWall(rows, withLine ? lineAfter : -1, cut);
    else placeInList(rows, withLine ? lineAfter : -1, cut);

    setText("total", fmt(tally.total));
    var total = $("total");
    if (total) total.dataset.value = String(tally.total);
    setText("updated", "更新于 " + clock(tally.as_of));
    var leaders = nominees.filter(function (n) { return n.rank === 1 && n.votes > 0; });
    setText("leader", leaders.length === 0 ? "暂无"
      : leaders.length === 1 ? leaders[0].name
        : leaders[0].name + " 等 " + leaders.length + " 人");
    setText("cut-votes", cut && cut.votes > 0 ? fmt(cut.votes) + " 票" : "暂无");
    renderRate();
  }

  function placeInList(rows, lineAfter, cut) {
    var board = $("board");
    rows.forEach(function (row) {
      row.hidden = false;
      board.appendChild(row);
    });
    var line = $("cut");
    if (lineAfter >= 0) {
      board.insertBefore(cutElement(cut), rows[lineAfter].nextSibling);
    } else if (line && line.parentNode) {
      line.parentNode.removeChild(line);
    }
  }

  // The wall: the places above the award line held on the left, as tall as the screen
  // allows; the others on the right, a page at a time, in turns.
  function placeOnWall(rows, lineAfter, cut) {
    var board = $("board");
    var rest = $("board-rest");
    // The award places (and any tied across the line), at least the first `seats` rows.
    var held = Math.max(lineAfter + 1, Math.min(seats(), rows.length));
    var room = board.clientHeight - (lineAfter >= 0 ? 64 : 0); // the line and its rule
    held = Math.min(held, Math.max(1, Math.floor(room / WALL_ROW_MIN)));
    var height = Math.floor(room / Math.max(held, seats()));
    board.style.setProperty("--row-h", Math.max(WALL_ROW_MIN, Math.min(WALL_ROW_MAX, height)) + "px");
    rows.slice(0, held).forEach(function (row) {
      row.hidden = false;
      board.appendChild(row);
    });
    var line = $("cut");
    if (lineAfter >= 0 && lineAfter < held) {
      board.insertBefore(cutElement(cut), rows[lineAfter].nextSibling);
    } else if (line && line.parentNode) {
      line.parentNode.removeChild(line);
    }

    var others = rows.slice(held);
    var perPage = Math.max(1, Math.floor(rest.clientHeight / WALL_REST_ROW));
    var pages = Math.max(1, Math.ceil(others.length / perPage));
    var page = state.turn % pages;
    others.forEach(function (row, i) {
      row.hidden = Math.floor(i / perPage) !== page;
      rest.appendChild(row);
    });
    setText("rest-title", others.length === 0 ? ""
      : pages > 1 ? "其他候选人 · 轮流显示第 " + (page + 1) + "/" + pages + " 页" : "其他候选人");
  }

  // ---- votes per minute, from the totals this page has seen ----------------

  function totalAt(t) {
    var found = null;
    for (var i = 0; i < state.samples.length && state.samples[i].t <= t; i++) {
      found = state.samples[i].total;
    }
    return found;
  }

  function renderRate() {
    var spark = $("spark");
    if (!spark) return;
    var samples = state.samples;
    var now = Date.now();
    while (samples.length > 2 && samples[1].t < now - (RATE_MINUTES + 1) * 60000) samples.shift();
    var first = samples[0];
    var rate = $("rate");
    if (document.body.dataset.state === "unreachable") {
      rate.textContent = "—";
      rate.dataset.measured = "false";
    } else {
      var since = first ? Math.max(first.t, now - 60000) : now;
      var minutes = (now - since) / 60000;
      if (!first || minutes < 5 / 60) {
        rate.textContent = "统计中";
        rate.dataset.measured = "false";
      } else {
        var base = totalAt(since);
        if (base === null) base = first.total;
        var latest = samples[samples.length - 1].total;
        rate.textContent = fmt(Math.max(0, Math.round((latest - base) / minutes)));
        rate.dataset.measured = "true";
      }
    }
    // Ten slots, one a minute, drawn empty until the page has seen that minute.
    var bars = [];
    var peak = 0;
    for (var m = RATE_MINUTES - 1; m >= 0; m--) {
      var end = now - m * 60000;
      var value = null;
      if (first && first.t < end) {
        var a = totalAt(end - 60000);
        if (a === null) a = first.total;
        value = Math.max(0, totalAt(end) - a);
        peak = Math.max(peak, value);
      }
      bars.push(value);
    }
    if (spark.childNodes.length !== bars.length) {
      spark.textContent = "";
      bars.forEach(function () {
        var slot = document.createElement("span");
        slot.appendChild(document.createElement("i"));
        spark.appendChild(slot);
      });
    }
    bars.forEach(function (value, i) {
      var fill = spark.childNodes[i].firstChild;
      fill.style.height = !value ? "0" : Math.max(6, (100 * value) / peak) + "%";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (wall) {
      document.body.dataset.display = "wall";
      setInterval(function () {
        state.turn += 1;
        render();
      }, TURN_MS);
      window.addEventListener("resize", render);
    }
    loadCampaign();
    openStream();
    setInterval(renderRate, 1000);
  });
})();
