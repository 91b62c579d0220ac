// Campaign page: the nominees grouped by trade, one vote button each.
// It needs nothing but this service's API: GET /v1/nominees and POST /v1/votes.
// A media partner may copy this file as it is; every outcome reads in plain Chinese.
(function () {
  "use strict";

  // Where the vote service answers. Empty: the site that serves this page. A partner
  // serving a copy from its own site puts the service's address here (and the service
  // lists that site in VOTESVC_CORS_ORIGINS).
  var API = "";
  // A 503 is retried at most this many times, after Retry-After, with the same key.
  var MAX_RETRIES = 2;

  var campaign = null;
  var byId = {};
  var busy = false;

  function $(id) {
    return document.getElementById(id);
  }

  function dateTime(iso) {
    var options = {
      year: "numeric", month: "long", day: "numeric",
      hour: "2-digit", minute: "2-digit", hour12: false,
    };
    try {
      options.timeZone = campaign.timezone;
      return new Intl.DateTimeFormat("zh-CN", options).format(new Date(iso));
    } catch (e) {
      return iso;
    }
  }

  function show(outcome, text) {
    var box = $("message");
    box.dataset.outcome = outcome;
    var tone = { accepted: "good", pending: "", already_voted: "info", daily_limit: "info" };
    box.className = "message " + (outcome in tone ? tone[outcome] : "bad");
    box.textContent = text;
    box.hidden = false;
  }

  // The reply of POST /v1/votes, as a sentence for the voter.
  function explain(status, body, retryAfter, nominee) {
    var rules = campaign.rules;
    var name = nominee.name;
    if (status === 201) {
      var left = body.remaining_today;
      return ["accepted", left > 0
        ? "投票成功！已为" + name + "投上一票。今天这个手机号还可以投 " + left + " 票。"
        : "投票成功！已为" + name + "投上一票。今天的 " + rules.votes_per_phone_per_day + " 票已全部投完，明天再来！"];
    }
    var code = body && body.error ? body.error.code : "";
    var wait = retryAfter ? " " + retryAfter + " 秒后" : "稍后";
    switch (code) {
      case "already_voted":
        return [code, "今天已经为" + name + "投过票了。每位候选人每天可投 " +
          rules.votes_per_nominee_per_phone_per_day + " 票，明天再来支持吧！"];
      case "daily_limit":
        return [code, "这个手机号今天的 " + rules.votes_per_phone_per_day + " 票已经投完了，明天再来吧。"];
      case "rate_limited":
        return [code, "投票太快了，请" + wait + "再试。"];
      case "voting_closed":
        return [code, Date.now() < Date.parse(campaign.opens_at)
          ? "投票还没有开始，开始时间：" + dateTime(campaign.opens_at) + "。"
          : "投票已经结束，感谢您的关注！"];
      case "unavailable":
        return [code, "投票服务繁忙，请" + wait + "再试。"];
      case "invalid_phone":
        return [code, "手机号不正确：请填写 11 位中国大陆手机号（以 13–19 开头）。"];
      case "idempotency_conflict":
        return [code, "这次投票请求与之前的请求冲突，请刷新页面后再试。"];
      case "unknown_nominee":
        return [code, "没有找到这位候选人，请刷新页面后再试。"];
      default:
        return [code || "error", "投票没有成功，请稍后再试。（" + (code || "HTTP " + status) + "）"];
    }
  }

  function mark(id, text) {
    var button = document.querySelector('.vote[data-id="' + id + '"]');
    if (button) {
      button.textContent = text;
      button.classList.add("done");
    }
  }

  function vote(id) {
    var nominee = byId[id];
    var phone = $("phone").value.trim();
    if (!phone) {
      show("missing_phone", "请先在上方填写手机号，再点“投票”。");
      $("phone").focus();
      return;
    }
    if (busy) return;
    busy = true;
    show("pending", "正在为" + nominee.name + "投票…");
    // One key per click: a retry of this click is answered with its real outcome,
    // even when the first try was counted but its answer was lost (503).
    var key = newKey();
    var retries = 0;
    function attempt() {
      return fetch(API + "/v1/votes", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": key },
        body: JSON.stringify({ nominee: id, phone: phone }),
      }).then(function (response) {
        var retryAfter = response.headers.get("Retry-After");
        if (response.status === 503 && retries < MAX_RETRIES) {
          retries += 1;
          show("pending", "投票服务繁忙，正在自动重试（第 " + retries + " 次）…");
          return later(retryAfter).then(attempt);
        }
        return response.json().catch(function () { return null; }).then(function (body) {
          var result = explain(response.status, body, retryAfter, nominee);
          show(result[0], result[1]);
          if (result[0] === "accepted" || result[0] === "already_voted") mark(id, "今日已投");
        });
      });
    }
    attempt()
      .catch(function () {
        show("network", "网络连接失败，请检查网络后再试。");
      })
      .finally(function () {
        busy = false;
      });
  }

  // 16 random bytes as hex: a valid Idempotency-Key ([A-Za-z0-9_-], at most 64).
  function newKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
  }

  // Wait Retry-After seconds (1 if absent), plus up to half of it again at random,
  // so that the phones a busy moment turned away do not all come back at once.
  function later(retryAfter) {
    var seconds = Math.max(1, parseInt(retryAfter, 10) || 1);
    var ms = seconds * 1000 * (1 + Math.random() / 2);
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function render(data) {
    campaign = data.campaign;
    $("title").textContent = campaign.title;
    document.title = "投票 · " + campaign.title;
    var zone = campaign.timezone === "Asia/Shanghai" ? "北京时间" : campaign.timezone;
    var window_ = $("window");
    window_.textContent = "";
    ["投票时间：" + dateTime(campaign.opens_at), " 至 ", dateTime(campaign.closes_at) + "（" + zone + "）"]
      .forEach(function (part, i) {
        var span = document.createElement("span");
        if (i !== 1) span.className = "nowrap"; // break the line at "至", not inside a date
        span.textContent = part;
        window_.appendChild(span);
      });
    $("rules").textContent = "每个手机号每天最多投 " + campaign.rules.votes_per_phone_per_day +
      " 票，同一位候选人每天 " + campaign.rules.votes_per_nominee_per_phone_per_day + " 票。";

    var groups = [];
    var index = {};
    data.nominees.forEach(function (n) {
      byId[n.id] = n;
      if (!(n.trade in index)) {
        index[n.trade] = groups.length;
        groups.push({ trade: n.trade, nominees: [] });
      }
      groups[index[n.trade]].nominees.push(n);
    });

    var main = $("nominees");
    main.textContent = "";
    groups.forEach(function (group) {
      var section = document.createElement("section");
      section.className = "trade";
      var heading = document.createElement("h2");
      heading.textContent = group.trade;
      section.appendChild(heading);
      var list = document.createElement("ul");
      list.className = "cards";
      group.nominees.forEach(function (n) {
        var card = document.createElement("li");
        card.className = "card";
        card.innerHTML = '<span class="avatar" aria-hidden="true"></span>' +
          '<span class="who"><strong class="name"></strong><span class="employer"></span></span>' +
          '<button type="button" class="vote">投票</button>';
        card.querySelector(".avatar").textContent = n.name.charAt(0);
        card.querySelector(".name").textContent = n.name;
        card.querySelector(".employer").textContent = n.employer;
        var button = card.querySelector(".vote");
        button.dataset.id = n.id;
        button.setAttribute("aria-label", "投票给" + n.name);
        list.appendChild(card);
      });
      section.appendChild(list);
      main.appendChild(section);
    });
    main.setAttribute("aria-busy", "false");
  }

  function load() {
    fetch(API + "/v1/nominees")
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(render)
      .catch(function () {
        $("window").textContent = "暂时无法读取活动信息，正在重试…";
        setTimeout(load, 3000);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("nominees").addEventListener("click", function (event) {
      var button = event.target.closest(".vote");
      if (button) vote(button.dataset.id);
    });
    // A different phone has its own votes: show every button afresh.
    $("phone").addEventListener("input", function () {
      document.querySelectorAll(".vote.done").forEach(function (button) {
        button.textContent = "投票";
        button.classList.remove("done");
      });
    });
    load();
  });
})();
