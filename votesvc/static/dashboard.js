// Live dashboard: the tally pushed over /v1/tally/stream (Server-Sent Events),
// falling back to polling /v1/tally with If-None-Match once a second.
// Plain browser JavaScript, no build step, no network beyond this service.
(function () {
  "use strict";

  var DEFAULT_SEATS = 10; // until the campaign's rules say (rules.award_seats)
  function seats() {
    var rules = state.campaign && state.campaign.rules;
    return (rules && rules.award_seats) || DEFAULT_SEATS;
  }
  var POLL_MS = 1000;
  var FETCH_TIMEOUT_MS = 4000;
  var STREAM_RETRY_MS = 10000;
  var RATE_MINUTES = 10;

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
  };

  function $(id) {
    return document.getElementById(id);
  }

  var numberFormat = new Intl.NumberFormat("zh-CN");
  var timeFormat = null;

  function fmt(n) {
    return numberFormat.format(n);
  }

  function clock(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "—";
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

  function timedFetch(url, options) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, FETCH_TIMEOUT_MS);
    options = options || {};
    options.signal = controller.signal;
    options.cache = "no-store";
    return fetch(url, options).finally(function () { clearTimeout(timer); });
  }

  // ---- connection state -------------------------------------------------

  function setState(name, mode, detail) {
    document.body.dataset.state = name;
    if (mode !== undefined) document.body.dataset.mode = mode;
    var text = {
      connecting: "正在连接…",
      live: document.body.dataset.mode === "push" ? "实时推送" : "每秒刷新",
      unreachable: "服务暂不可达",
    }[name];
    $("status-text").textContent = text;
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
    var source = new EventSource("/v1/tally/stream");
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
        $("title").textContent = data.campaign.title;
        document.title = "实时榜单 · " + data.campaign.title;
        var seen = {};
        data.nominees.forEach(function (n) {
          if (!seen[n.trade]) {
            seen[n.trade] = true;
            state.trades.push(n.trade);
          }
        });
        renderFilters();
        render();
      })
      .catch(function () {
        setTimeout(loadCampaign, 2000);
      });
  }

  function renderFilters() {
    var box = $("filters");
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
  }

  // ---- the chart ------------------------------------------------------------

  // Where the award line falls: the 10th place's votes, and whether a tie straddles it.
  function cutLine(nominees) {
    if (nominees.length <= seats()) return null;
    var votes = nominees[seats() - 1].votes;
    var tied = nominees.filter(function (n) { return n.votes === votes; });
    var straddles = nominees[seats()].votes === votes;
    var first = tied[0].rank;
    return {
      votes: votes,
      straddles: straddles,
      first: first,
      last: first + tied.length - 1,
      count: tied.length,
      seats: seats() - first + 1,
    };
  }

  function standing(n, cut) {
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
      '<span class="badge">并列</span></span>';
    row.querySelector(".name").textContent = n.name;
    row.querySelector(".trade").textContent = n.trade;
    state.rows[n.id] = row;
    return row;
  }

  function cutElement(cut) {
    var line = $("cut");
    if (!line) {
      line = document.createElement("li");
      line.id = "cut";
      line.className = "cut";
      line.setAttribute("role", "separator");
    }
    var text = "前 " + seats() + " 名分界线（暂定）";
    if (cut.straddles) {
      text += " · 第 " + cut.first + "–" + cut.last + " 名并列 " + fmt(cut.votes) + " 票，" +
        cut.count + " 人争 " + cut.seats + " 个名额";
    }
    line.innerHTML = '<span class="cut-label"></span>';
    line.firstChild.textContent = text;
    line.dataset.tie = String(cut.straddles);
    return line;
  }

  function render() {
    var tally = state.tally;
    if (!tally) return;
    var nominees = tally.nominees;
    var top = nominees.length ? nominees[0].votes : 0;
    var cut = cutLine(nominees);
    var board = $("board");
    var visible = nominees.filter(function (n) {
      return !state.filter || n.trade === state.filter;
    });
    var lineAfter = null;
    visible.forEach(function (n) {
      var row = rowFor(n);
      var status = standing(n, cut);
      var sharesRank = nominees.some(function (m) { return m.id !== n.id && m.rank === n.rank; });
      row.dataset.status = status;
      row.dataset.votes = String(n.votes);
      row.dataset.rank = String(n.rank);
      row.querySelector(".rank").textContent = sharesRank ? n.rank + "=" : String(n.rank);
      row.querySelector(".votes").textContent = fmt(n.votes);
      row.querySelector(".bar").style.setProperty("--share", String(top ? n.votes / top : 0));
      row.title = n.name + " · " + n.trade + " · 第 " + n.rank + " 名 · " + fmt(n.votes) + " 票";
      board.appendChild(row);
      if (status !== "out") lineAfter = row;
    });
    Object.keys(state.rows).forEach(function (id) {
      var row = state.rows[id];
      var shown = visible.some(function (n) { return n.id === id; });
      if (!shown && row.parentNode) row.parentNode.removeChild(row);
    });
    var line = cut ? cutElement(cut) : null;
    if (line && lineAfter) {
      board.insertBefore(line, lineAfter.nextSibling);
    } else if (line && line.parentNode) {
      line.parentNode.removeChild(line);
    }

    $("total").textContent = fmt(tally.total);
    $("total").dataset.value = String(tally.total);
    $("updated").textContent = "更新于 " + clock(tally.as_of);
    var leaders = nominees.filter(function (n) { return n.rank === 1 && n.votes > 0; });
    $("leader").textContent = leaders.length === 0 ? "—"
      : leaders.length === 1 ? leaders[0].name
        : leaders[0].name + " 等 " + leaders.length + " 人";
    $("cut-votes").textContent = cut ? fmt(cut.votes) + " 票" : "—";
    renderRate();
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
    var samples = state.samples;
    var now = Date.now();
    var first = samples[0];
    var live = document.body.dataset.state === "live";
    while (samples.length > 2 && samples[1].t < now - (RATE_MINUTES + 1) * 60000) samples.shift();
    if (!first || !live) {
      $("rate").textContent = "—";
    } else {
      var latest = samples[samples.length - 1].total;
      var since = Math.max(first.t, now - 60000);
      var base = totalAt(since);
      if (base === null) base = first.total;
      var minutes = (now - since) / 60000;
      $("rate").textContent = minutes < 5 / 60 ? "—" : fmt(Math.max(0, Math.round((latest - base) / minutes)));
    }
    var spark = $("spark");
    var bars = [];
    var peak = 0;
    for (var m = RATE_MINUTES - 1; m >= 0; m--) {
      var end = now - m * 60000;
      var start = end - 60000;
      var value = null;
      if (first && first.t < end) {
        var a = totalAt(start);
        if (a === null) a = first.total;
        value = Math.max(0, totalAt(end) - a);
        peak = Math.max(peak, value);
      }
      bars.push({ value: value, ago: m });
    }
    if (spark.childNodes.length !== bars.length) {
      spark.innerHTML = "";
      bars.forEach(function () { spark.appendChild(document.createElement("span")); });
    }
    bars.forEach(function (minute, i) {
      var bar = spark.childNodes[i];
      var value = minute.value;
      bar.style.height = value === null ? "0" : Math.max(4, peak ? (100 * value) / peak : 4) + "%";
      bar.title = value === null ? "" :
        (minute.ago ? minute.ago + "–" + (minute.ago + 1) + " 分钟前：" : "最近 1 分钟：") + fmt(value) + " 票";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    loadCampaign();
    openStream();
    setInterval(renderRate, 1000);
  });
})();
