// gallery screen: progressive enhancement only (the page works without this file).
// Selection count, shift-click ranges, "select all on this page", and asking before a delete.
(function () {
  "use strict";

  var lastClicked = null;

  function form() { return document.getElementById("gallery-bulk"); }
  function boxes() {
    var bulk = form();
    return bulk ? Array.prototype.slice.call(bulk.querySelectorAll('input[type=checkbox][name="image"]')) : [];
  }
  function selected() { return boxes().filter(function (box) { return box.checked; }); }

  function refresh() {
    var count = document.getElementById("selection-count");
    var all = document.getElementById("select-all");
    if (!count || !all) return;
    var n = selected().length, total = boxes().length;
    count.hidden = false;
    count.textContent = n
      ? interpolate(ngettext("%(count)s image selected", "%(count)s images selected", n), { count: n }, true)
      : gettext("None selected");
    all.hidden = false;
    all.textContent = n && n === total ? gettext("Clear selection") : gettext("Select all on this page");
    boxes().forEach(function (box) {
      var item = box.closest(".gallery-item");
      if (item) item.classList.toggle("is-selected", box.checked);
    });
  }

  // Shift-click: every box between the last one clicked and this one takes this one's state.
  document.addEventListener("click", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLInputElement) || box.name !== "image" || !box.closest("#gallery-bulk")) return;
    if (event.shiftKey && lastClicked && lastClicked !== box && lastClicked.isConnected) {
      var list = boxes(), from = list.indexOf(lastClicked), to = list.indexOf(box);
      if (from !== -1 && to !== -1) {
        list.slice(Math.min(from, to), Math.max(from, to) + 1).forEach(function (other) { other.checked = box.checked; });
      }
    }
    lastClicked = box;
    refresh();
  });

  document.addEventListener("change", function (event) {
    if (event.target.name === "image") refresh();
  });

  document.addEventListener("click", function (event) {
    if (!event.target.closest || !event.target.closest("#select-all")) return;
    var list = boxes(), check = selected().length !== list.length;
    list.forEach(function (box) { box.checked = check; });
    refresh();
  });

  // Delete asks first (without JavaScript the server shows a confirmation page instead).
  document.addEventListener("submit", function (event) {
    var bulk = event.target;
    if (bulk.id !== "gallery-bulk") return;
    var button = event.submitter;
    var old = bulk.querySelector('input[name="confirm"]');
    if (old) old.remove();
    if (!button || button.value !== "delete") return;
    var n = selected().length;
    if (!n) return; // the server says "Select at least one image first."
    var question = ngettext(
      "Delete %(count)s image? Its file is removed for good.",
      "Delete %(count)s images? Their files are removed for good.",
      n
    );
    if (!window.confirm(interpolate(question, { count: n }, true))) {
      event.preventDefault();
      return;
    }
    var confirmed = document.createElement("input");
    confirmed.type = "hidden";
    confirmed.name = "confirm";
    confirmed.value = "yes";
    bulk.appendChild(confirmed);
  });

  // Filters: leave empty fields out of the URL (?q=fox rather than ?q=fox&tag=&provider=…).
  document.addEventListener("submit", function (event) {
    if (!event.target.classList.contains("gallery-filters")) return;
    Array.prototype.forEach.call(event.target.elements, function (field) {
      if (field.name && field.type !== "checkbox" && field.value === "") field.disabled = true;
    });
  });
  function enableFilters() {
    document.querySelectorAll(".gallery-filters [disabled]").forEach(function (field) { field.disabled = false; });
  }

  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
  // Back/forward cache: boxes keep their state, the labels must follow; fields come back.
  window.addEventListener("pageshow", function () { enableFilters(); refresh(); });
})();
