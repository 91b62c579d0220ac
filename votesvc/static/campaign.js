// Campaign page: the nominees grouped by trade, one vote button each; a tap on a nominee
// with a story opens it. The embed page /embed/vote runs the same script for one nominee
// (?nominee=N07) or one trade (?trade=焊工).
// It needs nothing but this service's API: GET /v1/nominees and POST /v1/votes, and where
// votes are verified by SMS, GET /v1/pow, POST /v1/otp and POST /v1/otp/verify first.
// A media partner may copy this file (with site.js, which says where the API is, and
// pow-worker.js beside it) as it is; every outcome reads in plain Chinese.
(function () {
  "use strict";

  var api = window.votesvc.api; // site.js: where the API answers
  // A 503 is retried at most this many times, after Retry-After, with the same key.
  var MAX_RETRIES = 2;
  // The proof of work runs in this worker; a worker must come from the page's own site,
  // so it is looked for beside this script.
  var WORKER = ((document.currentScript && document.currentScript.src) || "/static/campaign.js")
    .replace(/[^/]*$/, "pow-worker.js");
  // sessionStorage: the verified voter of this tab, {campaign, phone, token, expires}.
  var VOTER_KEY = "votesvc.voter";
  var PHONE_WRONG = "手机号不正确：请填写 11 位中国大陆手机号（以 13–19 开头）。";
  var BUSY = "服务繁忙，请稍后再试。";
  var OFFLINE = "网络连接失败，请检查网络后再试。";

  var campaign = null;
  var byId = {};
  var busy = false;
  // "open": a phone number is enough (no verification); "sms": a code first; "partner":
  // votes are cast in a partner's app, not here.
  var mode = "open";
  var voter = null; // the verified voter, once the code is right
  var pending = null; // the nominee a voter tapped before verifying: voted for once verified
  var sending = false;
  var checking = false;
  var cooldown = null; // {phone, until, timer}: no new code for this phone until then
  var sentTo = null; // the phone the last code went to

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

  // Full-width digits, plus and dash (０-９ ＋ －), as some Chinese keyboards type them, as ASCII.
  function ascii(text) {
    return text.replace(/[\uff10-\uff19\uff0b\uff0d]/g, function (c) {
      return String.fromCharCode(c.charCodeAt(0) - 0xfee0);
    });
  }

  // The 11-digit mainland mobile number typed, or "" if it is not one. The API takes only
  // ASCII digits: the page forgives full-width ones and spaces of any width.
  function phoneNumber() {
    var number = ascii($("phone").value).replace(/[\s\-\u3000]/g, "").replace(/^(\+|00)86/, "");
    return /^1[3-9]\d{9}$/.test(number) ? number : "";
  }

  function spaced(phone) {
    return phone.slice(0, 3) + " " + phone.slice(3, 7) + " " + phone.slice(7);
  }

  // "N 秒" for a short wait, "N 分钟" for a longer one.
  function duration(seconds) {
    return seconds < 100 ? seconds + " 秒" : Math.ceil(seconds / 60) + " 分钟";
  }

  // The card of a nominee.
  function cardOf(id) {
    return document.querySelector('.card[data-id="' + id + '"]');
  }

  // Say what happened, in the page's flow where it happened: inside the nominee's card
  // (the message never covers a card or a field), or under the code step (where).
  function show(outcome, text, where) {
    var box = $("message");
    box.dataset.outcome = outcome;
    var tone = {
      accepted: "good", verified: "good", pending: "",
      already_voted: "info", daily_limit: "info", verify_first: "info",
    };
    box.className = "message " + (outcome in tone ? tone[outcome] : "bad");
    box.textContent = text;
    if (where && box.parentNode !== where) {
      var privacy = $("privacy"); // in the form: above the privacy note, under the step
      where.insertBefore(box, privacy.parentNode === where ? privacy : null);
    }
    box.hidden = false;
  }

  // A line under the code step: what just happened there, and what to do next.
  function say(outcome, tone, text) {
    var line = $("step");
    line.dataset.outcome = outcome;
    line.className = "step " + tone;
    line.textContent = text;
    line.hidden = false;
  }

  function closed() {
    return Date.now() < Date.parse(campaign.opens_at)
      ? "投票还没有开始，开始时间：" + dateTime(campaign.opens_at) + "。"
      : "投票已经结束，感谢您的关注！";
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
        return [code, closed()];
      case "unavailable":
        return [code, "投票服务繁忙，请" + wait + "再试。"];
      case "invalid_phone":
        return [code, PHONE_WRONG];
      case "idempotency_conflict":
        return [code, "这次投票请求与之前的请求冲突，请刷新页面后再试。"];
      case "unknown_nominee":
        return [code, "没有找到这位候选人，请刷新页面后再试。"];
      default:
        return [code || "error", "投票没有成功，请稍后再试。"];
    }
  }

  // A button's name starts with what it shows, so that a voice command can name it.
  function mark(id, text) {
    var button = document.querySelector('.vote[data-id="' + id + '"]');
    if (button) {
      button.textContent = text;
      button.setAttribute("aria-label", text + "：" + byId[id].name);
      button.classList.add("done");
    }
  }

  function unmarkAll() {
    document.querySelectorAll(".vote.done").forEach(function (button) {
      button.textContent = "投票";
      button.setAttribute("aria-label", "投票给" + byId[button.dataset.id].name);
      button.classList.remove("done");
    });
  }

  function vote(id) {
    var nominee = byId[id];
    var card = cardOf(id);
    var typed = $("phone").value.trim();
    var phone = phoneNumber();
    if (mode === "sms" && (!voter || voter.expires <= Date.now())) {
      pending = id;
      if (voter) {
        forget();
        return askAgain("手机号验证已过期，请在上方重新获取验证码，验证后会自动为" + nominee.name + "投票。");
      }
      return ask("verify_first", "投票前请先验证手机号：在上方填写手机号，点“获取验证码”，" +
        "再输入短信里的 6 位验证码。验证后会自动为" + nominee.name + "投票。");
    }
    if (mode === "open" && !phone) {
      if (typed) show("invalid_phone", PHONE_WRONG, card);
      else show("missing_phone", "请先在上方填写手机号，再点“投票”。", card);
      $("phone").focus({ preventScroll: true });
      return;
    }
    if (busy) return;
    busy = true;
    show("pending", "正在为" + nominee.name + "投票…", card);
    // A vote that waited for the code step: bring its card back into view with the outcome.
    var box = card.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) card.scrollIntoView({ block: "center" });
    // One key per click: a retry of this click is answered with its real outcome,
    // even when the first try was counted but its answer was lost (503).
    var headers = { "Content-Type": "application/json", "Idempotency-Key": newKey() };
    var body = { nominee: id, phone: phone };
    if (mode === "sms") {
      headers.Authorization = "Bearer " + voter.token;
      body = { nominee: id }; // the token says who votes
    }
    var retries = 0;
    function attempt() {
      return fetch(api("/v1/votes"), {
        method: "POST", headers: headers, body: JSON.stringify(body),
      }).then(function (response) {
        var retryAfter = response.headers.get("Retry-After");
        if (response.status === 503 && retries < MAX_RETRIES) {
          retries += 1;
          show("pending", "投票服务繁忙，正在自动重试（第 " + retries + " 次）…");
          return later(retryAfter).then(attempt);
        }
        return response.json().catch(function () { return null; }).then(function (reply) {
          if (response.status === 401 || (reply && reply.error && reply.error.code === "phone_mismatch")) {
            // The token is expired or not taken any more: verify again, then this vote.
            forget();
            pending = id;
            return askAgain("手机号验证已失效，请在上方重新获取验证码，验证后会自动为" + nominee.name + "投票。");
          }
          var result = explain(response.status, reply, retryAfter, nominee);
          show(result[0], result[1]);
          if (result[0] === "accepted" || result[0] === "already_voted") mark(id, "今日已投");
        });
      });
    }
    attempt()
      .catch(function () {
        show("network", OFFLINE);
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

  // --- Verified voters: a code by SMS, behind a proof of work, for a token ----------

  function remember(value) {
    voter = value;
    try {
      sessionStorage.setItem(VOTER_KEY, JSON.stringify(value));
    } catch (e) {
      // Storage turned off: the token lasts as long as the page.
    }
  }

  function forget() {
    voter = null;
    try {
      sessionStorage.removeItem(VOTER_KEY);
    } catch (e) {
      // nothing kept
    }
  }

  // This tab's voter, if verified for this campaign and not expired.
  function recall() {
    var saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(VOTER_KEY));
    } catch (e) {
      return null;
    }
    if (saved && saved.campaign === campaign.id && saved.expires > Date.now()) return saved;
    forget();
    return null;
  }

  // Show the step the voter is at: the code step, or verified.
  function showStep() {
    var form = $("phone-form");
    form.dataset.step = voter ? "verified" : "code";
    if (voter) {
      say("verified", "good", "手机号已验证，点候选人旁的“投票”即可。要换一个手机号，改动上面的号码就行。");
    }
    refreshSend();
  }

  // Bring the code step into view, say what to do, and put the cursor where to do it.
  function ask(outcome, text) {
    showStep();
    show(outcome, text, $("phone-form"));
    var phone = phoneNumber();
    var send = $("send-code");
    var field = !phone ? $("phone") : phone === sentTo || send.disabled ? $("code") : send;
    $("phone-form").scrollIntoView(true);
    field.focus({ preventScroll: true });
  }

  function askAgain(text) {
    ask("verification_expired", text);
    say("verification_expired", "bad", "验证已失效，请重新获取验证码。");
  }

  function refreshSend() {
    var button = $("send-code");
    var left = cooldown ? Math.ceil((cooldown.until - Date.now()) / 1000) : 0;
    if (cooldown && left <= 0) stopCountdown();
    button.disabled = sending || left > 0;
    button.textContent = sending ? "请稍候…"
      : left > 0 ? duration(left) + "后可重新获取"
      : sentTo ? "重新获取验证码" : "获取验证码";
  }

  function startCountdown(phone, seconds) {
    stopCountdown();
    cooldown = { phone: phone, until: Date.now() + seconds * 1000 };
    cooldown.timer = setInterval(refreshSend, 250);
    refreshSend();
  }

  function stopCountdown() {
    if (cooldown) clearInterval(cooldown.timer);
    cooldown = null;
  }

  // POST a JSON body; the reply as {status, code, body, retryAfter, date}.
  function post(path, body) {
    return fetch(api(path), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (reply) {
        var error = reply && reply.error ? reply.error : {};
        return {
          status: response.status,
          code: error.code || "",
          error: error,
          body: reply || {},
          retryAfter: parseInt(response.headers.get("Retry-After"), 10) || 0,
          date: Date.parse(response.headers.get("Date") || ""),
        };
      });
    });
  }

  function failure(text) {
    var error = new Error(text);
    error.say = text;
    return error;
  }

  // GET /v1/pow, solved in a worker: the payload POST /v1/otp takes as "pow".
  function proofOfWork() {
    return fetch(api("/v1/pow"), { cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw failure(BUSY);
        return response.json();
      })
      .then(function (challenge) {
        return new Promise(function (resolve, reject) {
          var worker;
          try {
            worker = new Worker(WORKER);
          } catch (e) {
            return reject(failure("这个浏览器无法完成安全验证，请换用手机自带的浏览器或升级后再试。"));
          }
          worker.onmessage = function (event) {
            worker.terminate();
            if (event.data === null) return reject(failure("安全验证没有完成，请再点一次“获取验证码”。"));
            resolve(btoa(JSON.stringify({
              algorithm: challenge.algorithm,
              challenge: challenge.challenge,
              number: event.data,
              salt: challenge.salt,
              signature: challenge.signature,
            })));
          };
          worker.onerror = function () {
            worker.terminate();
            reject(failure("这个浏览器无法完成安全验证，请换用手机自带的浏览器或升级后再试。"));
          };
          worker.postMessage(challenge);
        });
      });
  }

  // The reply of POST /v1/otp, as [tone, sentence]; starts the countdown it asks for.
  function explainSend(reply, phone) {
    var verification = campaign.verification;
    var wait = duration(reply.retryAfter || 60);
    switch (reply.status === 202 ? "sent" : reply.code) {
      case "sent":
        sentTo = phone;
        startCountdown(phone, reply.body.resend_after);
        return ["good", "验证码已发送至 " + spaced(phone) + "，" + duration(reply.body.expires_in) +
          "内有效。请查看短信，填写短信里的 6 位验证码。"];
      case "rate_limited":
        startCountdown(phone, reply.retryAfter || verification.resend_seconds);
        return reply.retryAfter <= verification.resend_seconds
          ? ["info", "刚刚已经给这个手机号发过验证码，请查看短信；" + wait + "后可重新获取。"]
          : ["bad", "这个网络获取验证码的次数太多了，请 " + wait + "后再试。"];
      case "daily_limit":
        return ["bad", "今天获取验证码的次数已用完，请明天再来。"];
      case "sms_budget_exhausted":
        startCountdown(phone, reply.retryAfter || 60);
        return ["bad", "现在获取验证码的人太多了，请 " + wait + "后再试。"];
      case "sms_unavailable":
        return ["bad", "短信发送失败，请稍后重试。" +
          (sentTo === phone ? "之前收到的验证码仍然有效。" : "")];
      case "pow_required":
      case "pow_invalid":
        return ["bad", "安全验证没有通过，请再点一次“获取验证码”。"];
      case "invalid_phone":
        return ["bad", PHONE_WRONG];
      case "voting_closed":
        return ["bad", closed()];
      case "unavailable":
        return ["bad", BUSY];
      case "invalid_request":
      case "invalid_json":
        return ["bad", "页面出了点问题，请刷新页面后再试。"];
      default:
        return ["bad", "获取验证码没有成功，请稍后再试。"];
    }
  }

  // The refusal of POST /v1/otp/verify, as a sentence.
  function explainCheck(reply) {
    switch (reply.code) {
      case "invalid_code":
        return reply.error.attempts_left > 0
          ? "验证码错误，还可以再试 " + reply.error.attempts_left + " 次。"
          : "验证码错误次数太多，这个验证码已失效，请重新获取。";
      case "code_expired":
        return "验证码已失效，请重新获取。";
      case "invalid_request":
        return "请填写短信里的 6 位数字验证码。";
      case "rate_limited":
        return "尝试次数太多了，请 " + duration(reply.retryAfter || 60) + "后再试。";
      case "invalid_phone":
        return PHONE_WRONG;
      case "voting_closed":
        return closed();
      case "unavailable":
        return BUSY;
      default:
        return "验证没有成功，请稍后再试。";
    }
  }

  function sendCode() {
    var phone = phoneNumber();
    if (!phone) {
      say("invalid_phone", "bad", PHONE_WRONG);
      $("phone").focus();
      return;
    }
    if (sending || (cooldown && cooldown.phone === phone)) return;
    sending = true;
    refreshSend();
    var proof = campaign.verification.pow ? proofOfWork() : Promise.resolve(null);
    say("working", "", campaign.verification.pow ? "正在进行安全验证，请稍候…" : "正在发送验证码…");
    proof
      .then(function (pow) {
        say("working", "", "正在发送验证码…");
        return post("/v1/otp", pow ? { phone: phone, pow: pow } : { phone: phone });
      })
      .then(function (reply) {
        var told = explainSend(reply, phone);
        say(reply.status === 202 ? "sent" : reply.code || "error", told[0], told[1]);
        if (reply.status === 202) $("code").focus();
      })
      .catch(function (error) {
        say("error", "bad", error.say || OFFLINE);
      })
      .finally(function () {
        sending = false;
        refreshSend();
      });
  }

  // The six digits in what was typed or pasted: full-width digits count, the rest does not.
  function codeDigits(text) {
    return ascii(text).replace(/\D/g, "").slice(0, 6);
  }

  function checkCode(event) {
    event.preventDefault();
    if (mode !== "sms" || voter) return;
    var phone = phoneNumber();
    var code = codeDigits($("code").value);
    if (!phone) {
      say("invalid_phone", "bad", PHONE_WRONG);
      $("phone").focus();
      return;
    }
    if (code.length !== 6) {
      say("invalid_request", "bad", sentTo === phone
        ? "请填写短信里的 6 位数字验证码。"
        : "请先点“获取验证码”，再填写短信里的 6 位数字验证码。");
      $("code").focus();
      return;
    }
    if (checking) return;
    checking = true;
    $("check-code").disabled = true;
    say("working", "", "正在验证…");
    post("/v1/otp/verify", { phone: phone, code: code })
      .then(function (reply) {
        if (reply.status !== 200) {
          say(reply.code || "error", "bad", explainCheck(reply));
          var dead = reply.code === "code_expired" || reply.error.attempts_left === 0;
          if (dead) $("code").value = ""; // a new code is needed: nothing to correct here
          (dead && !$("send-code").disabled ? $("send-code") : $("code")).focus();
          return;
        }
        // The expiry on this phone's clock: the server's time says how far ahead it is.
        var expires = Date.parse(reply.body.expires_at);
        if (reply.date) expires = Date.now() + (expires - reply.date);
        remember({ campaign: campaign.id, phone: phone, token: reply.body.token, expires: expires });
        sentTo = null; // that code is used up
        $("code").value = "";
        showStep();
        if (pending) {
          var id = pending;
          pending = null;
          vote(id);
        } else {
          show("verified", "验证成功！现在可以投票了。", $("phone-form"));
        }
      })
      .catch(function () {
        say("error", "bad", OFFLINE);
      })
      .finally(function () {
        checking = false;
        $("check-code").disabled = false;
      });
  }

  function phoneChanged() {
    unmarkAll(); // a different phone has its own votes: show every button afresh
    if (mode !== "sms") return;
    var phone = phoneNumber();
    if (voter && phone !== voter.phone) {
      forget();
      showStep();
      say("phone_changed", "", "手机号已更换，请重新获取验证码。");
    }
    if (cooldown && cooldown.phone !== phone) stopCountdown();
    refreshSend();
  }

  // Keep the code field to its digits as it is typed; a pasted SMS gives its code.
  function codeTyped() {
    var field = $("code");
    var digits = codeDigits(field.value);
    if (field.value !== digits) field.value = digits;
  }

  function codePasted(event) {
    var text = ascii((event.clipboardData || window.clipboardData).getData("text") || "");
    var found = /(?:^|\D)(\d{6})(?!\d)/.exec(text);
    if (!found) return; // let the field take it; codeTyped keeps the digits
    event.preventDefault();
    $("code").value = found[1];
  }

  // --- The page --------------------------------------------------------------------

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

    var verification = campaign.verification;
    if (verification) mode = verification.methods.indexOf("sms") >= 0 ? "sms" : "partner";
    var form = $("phone-form");
    form.dataset.mode = mode;
    form.hidden = mode === "partner";
    $("elsewhere").hidden = mode !== "partner";
    if (mode === "sms") {
      $("privacy").textContent = "手机号只用于发验证码和防止重复投票，不会保存或公开号码。";
      voter = recall();
      if (voter) $("phone").value = voter.phone;
      showStep();
    }

    var groups = [];
    var index = {};
    var shown = chosen(data.nominees);
    shown.forEach(function (n) {
      byId[n.id] = n;
      if (!(n.trade in index)) {
        index[n.trade] = groups.length;
        groups.push({ trade: n.trade, nominees: [] });
      }
      groups[index[n.trade]].nominees.push(n);
    });

    var main = $("nominees");
    main.textContent = "";
    if (!shown.length) {
      var none = document.createElement("p");
      none.className = "notice";
      none.textContent = "没有找到要投票的候选人，请查看全部候选人名单。";
      main.appendChild(none);
    }
    groups.forEach(function (group) {
      var section = document.createElement("section");
      section.className = "trade";
      var heading = document.createElement("h2");
      heading.textContent = group.trade;
      section.appendChild(heading);
      var list = document.createElement("ul");
      list.className = "cards";
      group.nominees.forEach(function (n) {
        list.appendChild(card(n));
      });
      section.appendChild(list);
      main.appendChild(section);
    });
    main.setAttribute("aria-busy", "false");
  }

  // The nominees this page shows: all of them, or on the embed page the one its address
  // names (?nominee=N07) or those of a trade (?trade=焊工).
  function chosen(nominees) {
    if (document.body.dataset.page !== "embed-vote") return nominees;
    var query = new URLSearchParams(location.search);
    var id = query.get("nominee");
    var trade = query.get("trade");
    return nominees.filter(function (n) {
      return (!id || n.id === id) && (!trade || n.trade === trade);
    });
  }

  // A nominee's card: the photo (or the name's first character), name, title, employer,
  // the vote button, and the story, opened by a tap on the nominee.
  function card(n) {
    var item = document.createElement("li");
    item.className = "card";
    item.dataset.id = n.id;
    var who = n.bio ? "button" : "div";
    item.innerHTML = '<div class="card-main"><' + who + ' class="profile">' +
      '<span class="avatar" aria-hidden="true"></span>' +
      '<span class="who"><span class="line"><strong class="name"></strong>' +
      '<span class="title"></span></span><span class="employer"></span>' +
      (n.bio ? '<span class="more">事迹简介</span>' : "") + "</span></" + who + ">" +
      (mode === "partner" ? "" : '<button type="button" class="vote">投票</button>') +
      "</div>" + (n.bio ? '<p class="bio" hidden></p>' : "");
    var avatar = item.querySelector(".avatar");
    if (n.photo_url) {
      var photo = document.createElement("img");
      photo.src = api(n.photo_url);
      photo.alt = "";
      photo.width = photo.height = 96;
      photo.loading = "lazy";
      photo.decoding = "async";
      avatar.appendChild(photo);
      avatar.classList.add("photo");
    } else {
      avatar.textContent = n.name.charAt(0);
    }
    item.querySelector(".name").textContent = n.name;
    var title = item.querySelector(".title");
    if (n.title) title.textContent = n.title;
    else title.parentNode.removeChild(title);
    item.querySelector(".employer").textContent = n.employer;
    if (n.bio) {
      var bio = item.querySelector(".bio");
      bio.id = "bio-" + n.id;
      bio.textContent = n.bio;
      var profile = item.querySelector(".profile");
      profile.type = "button";
      profile.setAttribute("aria-expanded", "false");
      profile.setAttribute("aria-controls", bio.id);
    }
    var button = item.querySelector(".vote");
    if (button) {
      button.dataset.id = n.id;
      button.setAttribute("aria-label", "投票给" + n.name);
    }
    return item;
  }

  // A tap on a nominee with a story opens it; another closes it.
  function toggleBio(profile) {
    var open = profile.getAttribute("aria-expanded") !== "true";
    var item = profile.closest(".card");
    profile.setAttribute("aria-expanded", String(open));
    profile.querySelector(".more").textContent = open ? "收起简介" : "事迹简介";
    item.classList.toggle("open", open);
    item.querySelector(".bio").hidden = !open;
  }

  function load() {
    fetch(api("/v1/nominees"))
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
      var profile = event.target.closest("button.profile");
      if (profile) toggleBio(profile);
    });
    $("phone").addEventListener("input", phoneChanged);
    $("send-code").addEventListener("click", sendCode);
    $("code").addEventListener("input", codeTyped);
    $("code").addEventListener("paste", codePasted);
    $("phone-form").addEventListener("submit", checkCode);
    load();
  });
})();
