// The campaign page's proof of work (GET /v1/pow, ALTCHA v1): find the number n in
// 0..maxNumber whose SHA-256(salt + n), in hex, is the challenge. Posts n, or null.
// In a worker so the page stays responsive; digests go in batches, as each is a promise.
self.onmessage = function (event) {
  var c = event.data;
  var encoder = new TextEncoder();
  var target = new Uint8Array(32);
  for (var i = 0; i < 32; i++) target[i] = parseInt(c.challenge.substr(2 * i, 2), 16);
  function same(buffer) {
    var bytes = new Uint8Array(buffer);
    for (var i = 0; i < 32; i++) if (bytes[i] !== target[i]) return false;
    return true;
  }
  function from(start) {
    var end = Math.min(start + 1000, c.maxNumber + 1);
    var digests = [];
    for (var n = start; n < end; n++) {
      digests.push(crypto.subtle.digest("SHA-256", encoder.encode(c.salt + n)));
    }
    return Promise.all(digests).then(function (done) {
      for (var i = 0; i < done.length; i++) if (same(done[i])) return start + i;
      return end > c.maxNumber ? null : from(end);
    });
  }
  from(0).then(function (n) { postMessage(n); }, function () { postMessage(null); });
};
