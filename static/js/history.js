// history screen: progressive enhancement only (every control works without this file).
(function () {
  "use strict";

  // A deleted row disappears in place: keep the keyboard focus somewhere sensible
  // (the next row's prompt link, else the previous one's, else the status message).
  var focusAfterDelete = null;

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (!form.classList || !form.classList.contains("history-delete-form")) return;
    var row = form.closest("tr");
    var neighbour = row && (row.nextElementSibling || row.previousElementSibling);
    focusAfterDelete = neighbour && neighbour.querySelector("a") ? neighbour.querySelector("a") : null;
  });

  // htmx fires afterRequest on the form, then again on its nearest ancestor still in the page.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!form || !event.detail.successful || !form.classList || !form.classList.contains("history-delete-form") || form.isConnected) return;
    if (focusAfterDelete === false) return;  // already handled (the event comes twice)
    var target = focusAfterDelete && focusAfterDelete.isConnected ? focusAfterDelete : document.getElementById("history-status");
    focusAfterDelete = false;
    if (target) target.focus();
  });

  // Escape closes an open delete confirmation and returns focus to its summary.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = event.target.closest && event.target.closest("details.history-delete[open]");
    if (!open) return;
    open.open = false;
    open.querySelector("summary").focus();
  });
})();
