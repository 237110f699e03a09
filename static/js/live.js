// Live updates: one event stream per page (/tasks/events, generator/views/events.py) says which
// task changed; the task's card, its history row and the gallery are fetched again at once,
// through the same views the page polls without it. While the stream is up, the polling the
// cards and rows carry (hx-trigger="load delay:…") is held back; when it is down or blocked,
// they poll as before. Without JavaScript the pages reload themselves (base.html's <noscript>).
(function () {
  "use strict";

  var script = document.currentScript;
  var ACTIVE = ["pending", "retrying", "processing"];
  var LIVE = ".task-card[data-live-url], .history-row[data-live-url]";
  var REOPEN_MS = 30000; // after the server refused a stream (too many open pages), try again this late
  // Even with the stream up, what is still running is fetched again this often: a change whose
  // signal was lost (a worker that does not share the web's cache) shows late, not never.
  var SAFETY_MS = 10000;
  var live = false;
  var source = null;
  var reported = {}; // task id -> the last status the stream reported
  var busy = {}; // url -> true while fetched; "again" when another change came meanwhile

  function wanted() {
    return window.EventSource && document.querySelector(LIVE + ", #task-list, #gallery-grid[data-live-url]");
  }

  function isActive(element) {
    return ACTIVE.indexOf(element.getAttribute("data-status")) !== -1;
  }

  // Fetch one card or row again and put it in place of the old one (htmx wires it up).
  function refresh(element) {
    var url = element.getAttribute("data-live-url");
    if (busy[url]) { busy[url] = "again"; return; }
    busy[url] = true;
    fetch(url, { headers: { "HX-Request": "true", "HX-Current-URL": window.location.href }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        var current = element.id && document.getElementById(element.id);
        if (!html || !current) return;
        // A request sent from inside the card (Keep this one, Cancel) is still out: replacing the
        // card now would detach its sender, and htmx then drops the answer's out-of-band parts.
        // Fetch the card again once that request is done instead.
        var sending = current.classList.contains("htmx-request") ? current : current.querySelector(".htmx-request");
        if (sending) {
          sending.addEventListener("htmx:afterRequest", function () {
            var now = document.getElementById(element.id);
            if (now) refresh(now);
          }, { once: true });
          return;
        }
        htmx.swap(current, html, { swapStyle: "outerHTML", swapDelay: 0, settleDelay: 0 });
      })
      .catch(function () { /* the page polls or the next event tries again */ })
      .then(function () {
        var again = busy[url] === "again";
        delete busy[url];
        var current = element.id && document.getElementById(element.id);
        if (again && current) refresh(current);
      });
  }

  function refreshAll(onlyActive) {
    document.querySelectorAll(LIVE).forEach(function (element) {
      if (!onlyActive || isActive(element)) refresh(element);
    });
  }

  // A finished task's pictures join the top of the gallery's first page.
  function addToGallery() {
    var grid = document.querySelector("#gallery-grid[data-live-url]");
    if (!grid) return;
    fetch(grid.getAttribute("data-live-url"), { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        var template = document.createElement("template");
        template.innerHTML = html;
        var fresh = [].filter.call(template.content.querySelectorAll("li.gallery-item"), function (item) {
          return !document.getElementById(item.id);
        });
        fresh.reverse().forEach(function (item) {
          grid.insertBefore(item, grid.firstChild);
          htmx.process(item);
        });
      })
      .catch(function () {});
  }

  function onTask(message) {
    var change = JSON.parse(message.data);
    reported[change.id] = change.status;
    [document.getElementById("task-" + change.id), document.getElementById("task-row-" + change.id)].forEach(function (element) {
      if (element && element.hasAttribute("data-live-url") && (isActive(element) || element.getAttribute("data-status") !== change.status)) {
        refresh(element);
      }
    });
    if (change.status === "completed") addToGallery();
  }

  function up() {
    live = true;
    document.documentElement.setAttribute("data-live", "on");
    refreshAll(true); // whatever changed before the stream was there
  }

  function down() {
    if (!live) return;
    live = false;
    document.documentElement.setAttribute("data-live", "off");
    refreshAll(true); // each refreshed card or row polls again on its own
  }

  function open() {
    source = new EventSource(script.getAttribute("data-events-url"));
    source.addEventListener("ready", up);
    source.addEventListener("task", onTask);
    source.addEventListener("error", function () {
      down();
      // Refused (not an event stream): the browser gives up; ask again much later.
      if (source.readyState === EventSource.CLOSED) window.setTimeout(open, REOPEN_MS);
    });
  }

  // While the stream is up, a card's or row's own poll is not sent: the stream tells of changes.
  document.addEventListener("htmx:confirm", function (event) {
    var detail = event.detail;
    if (live && detail.triggeringEvent && detail.triggeringEvent.type === "load" && detail.elt.matches(LIVE)) {
      event.preventDefault();
    }
  });

  // A card added by Generate after the stream already reported its task: bring it up to date.
  // A variant set comes as one section with its cards inside.
  document.addEventListener("htmx:load", function (event) {
    var added = event.detail.elt;
    if (!live || !added.matches) return;
    var elements = added.matches(LIVE) ? [added] : [].slice.call(added.querySelectorAll(LIVE));
    elements.forEach(function (element) {
      var id = element.id.replace(/^task-(row-)?/, "");
      if (reported[id] && reported[id] !== element.getAttribute("data-status")) refresh(element);
    });
  });

  // Leaving the page hangs up; coming back to it from the browser's cache listens again.
  window.setInterval(function () { if (live) refreshAll(true); }, SAFETY_MS);

  window.addEventListener("pagehide", function () { if (source) source.close(); });
  window.addEventListener("pageshow", function (event) { if (event.persisted && wanted()) { down(); open(); } });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { if (wanted()) open(); });
  } else if (wanted()) {
    open();
  }
})();
