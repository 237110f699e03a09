// images screen: progressive enhancement only. Without this file every link opens the image's
// page and every form posts and comes back.
//
// The modal: a plain click on any a[data-modal] fetches that image's panel into
// <dialog id="image-modal"> (the view answers htmx with the fragment) and opens it as a modal
// dialog, so the rest of the page is inert, Escape closes it and focus comes back to the link.
(function () {
  "use strict";

  var opener = null; // the link that opened the dialog, to give focus back to
  var fallbackFocus = null; // where focus goes if that link is gone (its image was deleted)

  function dialog() {
    return document.getElementById("image-modal");
  }

  function focusInitial(root) {
    var target = root.querySelector("[data-initial-focus]") || root.querySelector("h1, h2");
    if (target) target.focus();
  }

  function openModal(link) {
    var modal = dialog();
    if (!modal || !window.htmx) return false;
    opener = link;
    fallbackFocus = null;
    link.setAttribute("aria-busy", "true");
    htmx
      .ajax("GET", link.href, { source: link, target: "#image-modal", swap: "innerHTML settle:0ms" })
      .then(function () {
        link.removeAttribute("aria-busy");
        if (!modal.querySelector(".image-panel")) {
          window.location.href = link.href; // the fragment did not come: show the page instead
          return;
        }
        modal.setAttribute("aria-labelledby", "image-title");
        if (!modal.open) modal.showModal();
        focusInitial(modal);
      });
    return true;
  }

  // Only a plain primary click: Ctrl/Cmd/Shift-click and middle-click still open the page.
  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    var link = event.target.closest && event.target.closest("a[data-modal]");
    if (!link || !link.href) return;
    if (openModal(link)) event.preventDefault();
  });

  // A modal dialog makes the page inert, but Chromium still lets Tab leave for the browser's
  // own controls past the last field: wrap around inside the dialog instead.
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])";
  document.addEventListener("keydown", function (event) {
    var modal = dialog();
    if (event.key !== "Tab" || !modal || !modal.open) return;
    var items = Array.prototype.filter.call(modal.querySelectorAll(FOCUSABLE), function (node) {
      return node.getClientRects().length > 0;
    });
    if (!items.length) return;
    var first = items[0], last = items[items.length - 1];
    var active = document.activeElement;
    var inside = modal.contains(active) && active !== modal;
    if (event.shiftKey && (!inside || active === first)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (!inside || active === last)) {
      event.preventDefault();
      first.focus();
    }
  });

  // A click on the backdrop (outside the panel) closes the dialog too.
  document.addEventListener("click", function (event) {
    var modal = dialog();
    if (modal && modal.open && event.target === modal) modal.close();
  });

  document.addEventListener("close", function (event) {
    if (event.target !== dialog()) return;
    event.target.replaceChildren();
    var target = opener && opener.isConnected ? opener : fallbackFocus;
    opener = null;
    if (target && target.isConnected) target.focus();
  }, true);

  // Swaps inside the dialog (the delete step, "Cancel, keep it"): put focus back in it.
  document.addEventListener("htmx:afterSwap", function (event) {
    var modal = dialog();
    if (!modal || !modal.open || event.detail.target !== modal) return;
    if (!modal.querySelector(".image-panel")) return;
    focusInitial(modal);
  });

  // A removed tag's button is gone with its chip: keep focus in the tags, on the add field.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (!target || !target.id || target.id.indexOf("image-tags-") !== 0) return;
    var active = document.activeElement;
    if (active && active !== document.body && active !== dialog() && active.isConnected) return;
    var field = document.getElementById("tag-name-" + target.id.slice("image-tags-".length));
    if (field) field.focus();
  });

  // The image was deleted from the modal: close it and take the image out of the page.
  document.addEventListener("atelier:image-deleted", function (event) {
    var id = event.detail && event.detail.id;
    if (!id) return;
    var links = document.querySelectorAll("a[data-modal]");
    Array.prototype.forEach.call(links, function (link) {
      if (link.pathname.indexOf("/images/" + id + "/") === -1) return;
      var item = link.closest("li, [data-image-id]") || link;
      if (link === opener) fallbackFocus = nextFocusable(item);
      item.remove();
    });
    var modal = dialog();
    if (modal && modal.open) modal.close();
    announce(gettext("The image was deleted."));
  });

  function nextFocusable(item) {
    var sibling = item.nextElementSibling || item.previousElementSibling;
    var link = sibling && sibling.querySelector("a[data-modal]");
    return link || document.getElementById("main");
  }

  function announce(text) {
    var box = document.getElementById("image-announce");
    if (!box) {
      box = document.createElement("p");
      box.id = "image-announce";
      box.className = "visually-hidden";
      box.setAttribute("role", "status");
      document.body.appendChild(box);
    }
    box.textContent = text;
  }
})();
