// What every page shares, loaded before its own script: where the vote service answers,
// and, inside a frame (the embed pages), the page's height for the page around it.
(function () {
  "use strict";

  // Where the vote service answers: the one place every page reads it from. Empty: the
  // site that serves the page. A partner serving copies of the pages from its own site
  // puts the service's address here, e.g. "https://vote.example.org", and the service
  // lists that site in VOTESVC_CORS_ORIGINS.
  var API = "";

  window.votesvc = {
    api: function (path) {
      return API + path;
    },
  };

  // In a frame: tell the parent page the height this page needs, on every change, as
  // {type: "votesvc:height", height: <px>}. It carries nothing else, so any parent may read it.
  if (window.parent === window) return;
  var last = -1;
  function report() {
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height === last) return;
    last = height;
    window.parent.postMessage({ type: "votesvc:height", height: height }, "*");
  }
  document.addEventListener("DOMContentLoaded", function () {
    report();
    if (window.ResizeObserver) {
      new ResizeObserver(report).observe(document.documentElement);
    } else {
      window.addEventListener("resize", report);
      setInterval(report, 500);
    }
  });
})();
