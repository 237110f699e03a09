// gallery screen: progressive enhancement only (the page works without this file).
// Selection count, shift-click ranges, "select all on this page", bulk actions in place (asking
// before a delete), lazy thumbnails, the thumbnail size and tiles that keep their aspect ratio.
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

  // Bulk actions happen in place: the toolbar says what was done and only the changed tiles
  // change (htmx swaps them out of band), so the selection and the scroll position stay.
  // Delete asks first. Without JavaScript the form posts and comes back (the server asks
  // before a delete on a page of its own); the zip download always posts normally.
  var IN_PLACE = ["tag", "untag", "favorite", "unfavorite", "publish", "delete"];
  document.addEventListener("submit", function (event) {
    var bulk = event.target;
    if (bulk.id !== "gallery-bulk") return;
    var button = event.submitter;
    var old = bulk.querySelector('input[name="confirm"]');
    if (old) old.remove();
    var action = button && button.name === "action" ? button.value : "";
    if (action === "delete" && selected().length && !bulk.dataset.confirmed) {
      var ask = document.getElementById("bulk-delete-dialog");
      if (ask && ask.showModal) {
        event.preventDefault();
        askBeforeDelete(ask, bulk, button);
        return;
      }
      if (!window.confirm(question(selected().length))) { // no <dialog>: the browser's own question
        event.preventDefault();
        return;
      }
      bulk.dataset.confirmed = "yes";
    }
    if (action === "delete" && bulk.dataset.confirmed) {
      delete bulk.dataset.confirmed;
      var confirmed = document.createElement("input");
      confirmed.type = "hidden";
      confirmed.name = "confirm";
      confirmed.value = "yes";
      bulk.appendChild(confirmed);
    }
    if (IN_PLACE.indexOf(action) === -1 || !window.htmx) return;
    event.preventDefault();
    var status = document.getElementById("gallery-bulk-status");
    if (status) status.textContent = "";
    var buttons = bulk.querySelectorAll(".bulk-toolbar button");
    buttons.forEach(function (node) { node.disabled = true; });
    htmx
      .ajax("POST", bulk.getAttribute("action"), { source: bulk, values: { action: action }, target: "#gallery-bulk-status", swap: "innerHTML settle:0ms" })
      .finally(function () {
        buttons.forEach(function (node) { node.disabled = false; });
        var extra = bulk.querySelector('input[name="confirm"]');
        if (extra) extra.remove();
        refresh();
      });
  });

  function question(n) {
    return interpolate(ngettext(
      "Delete %(count)s image? Its file is removed for good.",
      "Delete %(count)s images? Their files are removed for good.",
      n
    ), { count: n }, true);
  }

  // The styled question (a modal <dialog>): its Delete button submits the form again, confirmed;
  // Cancel or Escape leave everything as it was, focus back on "Delete…".
  function askBeforeDelete(ask, bulk, button) {
    var n = selected().length;
    document.getElementById("bulk-delete-question").textContent = question(n);
    document.getElementById("bulk-delete-yes").textContent = interpolate(
      ngettext("Delete %(count)s image", "Delete %(count)s images", n), { count: n }, true
    );
    ask.returnValue = "";
    ask.addEventListener("close", function () {
      button.focus();
      if (ask.returnValue !== "delete") return;
      bulk.dataset.confirmed = "yes";
      bulk.requestSubmit(button);
    }, { once: true });
    ask.showModal();
  }

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

  // --- the grid: aspect ratios, lazy thumbnails, thumbnail size -----------------------------

  // Each tile's box keeps its image's ratio from data-w/data-h (CSS attr()); browsers without
  // typed attr() get the same two numbers as custom properties.
  var typedAttr = window.CSS && CSS.supports && CSS.supports("flex-grow", "attr(data-w type(<number>), 1)");
  function ratios() {
    if (typedAttr) return;
    document.querySelectorAll(".gallery-item[data-w]:not([data-ratio-set])").forEach(function (item) {
      item.style.setProperty("--w", item.dataset.w);
      item.style.setProperty("--h", item.dataset.h);
      item.setAttribute("data-ratio-set", "");
    });
  }

  // Thumbnails after the first screen load when they come within a few hundred pixels of it
  // (Chromium's loading="lazy" starts 1250 px or more ahead: a whole page of 48 at once).
  function show(img) {
    if (!img.dataset.src) return;
    img.src = img.dataset.src;
    img.removeAttribute("data-src");
  }
  var watcher = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) return;
      watcher.unobserve(entry.target);
      show(entry.target);
    });
  }, { rootMargin: "300px 0px" }) : null;
  function lazy() {
    document.querySelectorAll("img[data-src]").forEach(function (img) {
      if (watcher) watcher.observe(img); else show(img);
    });
  }

  // The thumbnail size (the row height), remembered in this browser.
  var SIZE_KEY = "atelier.gallery.thumbSize";
  function remembered() {
    try { return window.localStorage.getItem(SIZE_KEY); } catch (error) { return null; }
  }
  function applySize(value) {
    var grid = document.getElementById("gallery-grid");
    if (grid && value) grid.style.setProperty("--row-height", value + "px");
  }
  function sizeControl() {
    var control = document.getElementById("thumb-size-control");
    var range = document.getElementById("thumb-size");
    var grid = document.getElementById("gallery-grid");
    if (!control || !range || !grid) return;
    var value = remembered();
    if (value) {
      range.value = value;
      applySize(range.value);
    } else {
      range.value = parseInt(getComputedStyle(grid).getPropertyValue("--row-height"), 10) || range.value;
    }
    range.setAttribute("aria-valuetext", interpolate(gettext("%(size)s pixels high"), { size: range.value }, true));
    control.hidden = false;
  }
  document.addEventListener("input", function (event) {
    if (event.target.id !== "thumb-size") return;
    applySize(event.target.value);
    event.target.setAttribute("aria-valuetext", interpolate(gettext("%(size)s pixels high"), { size: event.target.value }, true));
    try { window.localStorage.setItem(SIZE_KEY, event.target.value); } catch (error) { /* not remembered */ }
  });

  function prepareGrid() { ratios(); lazy(); }
  document.addEventListener("DOMContentLoaded", function () { prepareGrid(); sizeControl(); refresh(); });
  document.addEventListener("htmx:afterSettle", function () { prepareGrid(); refresh(); });
  document.addEventListener("htmx:oobAfterSwap", prepareGrid);
  // Back/forward cache: boxes keep their state, the labels must follow; fields come back.
  window.addEventListener("pageshow", function () { enableFilters(); refresh(); });
})();
