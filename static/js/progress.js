// Generating tasks: the elapsed time ticks on between the card's refreshes (progressive
// enhancement; the server renders the same m:ss each time the card is swapped in).
(function () {
  "use strict";

  // When this page first saw each element: the count goes on from the server's figure, so a
  // clock that differs between browser and server changes nothing.
  var seen = new WeakMap();

  function format(total) {
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var seconds = total % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return hours ? hours + ":" + pad(minutes) + ":" + pad(seconds) : minutes + ":" + pad(seconds);
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time.task-elapsed[data-elapsed]").forEach(function (element) {
      var base = parseInt(element.dataset.elapsed, 10);
      if (isNaN(base)) return;
      if (!seen.has(element)) seen.set(element, now);
      var total = base + Math.floor((now - seen.get(element)) / 1000);
      var text = format(total);
      if (element.textContent !== text) element.textContent = text;
    });
  }

  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSettle", tick);
})();
