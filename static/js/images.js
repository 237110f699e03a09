// The image viewer: progressive enhancement only. Without this file every thumbnail link opens
// the image's page and every form posts and comes back.
//
// One viewer for every page. A plain click on any a[data-modal] (the gallery's tiles, the create
// page's and the task page's cards, the history rows) fetches that image's panel into
// <dialog id="image-modal"> (the view answers htmx with the fragment) and opens it as a modal
// dialog: the rest of the page is inert, Escape closes it and focus comes back to the thumbnail.
// The "list" is every a[data-modal] on the page, in document order, so thumbnails added later
// (a new task card, the gallery's next page) are in it. ←/→ and the panel's buttons go through
// it; past the last one, the page's [data-viewer-more] (its infinite-scroll sentinel) loads the
// next page and the viewer goes on. F favourite, D download, Delete, ? the list of shortcuts.
(function () {
  "use strict";

  var opener = null; // the thumbnail of the image shown, to give focus back to
  var fallbackFocus = null; // where focus goes if that link is gone (its image was deleted)
  var waitingForMore = false; // → was pressed on the last thumbnail: the next page is loading
  var focusAfterSwap = null; // "prev"/"next": the button that moved, to keep focus on it
  var loading = false; // a panel is on its way: a further step waits for it (keys repeat fast)
  var queued = 0;

  function dialog() {
    return document.getElementById("image-modal");
  }

  function thumbnails() {
    var modal = dialog();
    return Array.prototype.filter.call(document.querySelectorAll("a[data-modal]"), function (link) {
      return !(modal && modal.contains(link));
    });
  }

  // Where the image shown sits in the list: its link if still there, else a link to the same page.
  function position(list) {
    var index = opener ? list.indexOf(opener) : -1;
    if (index === -1 && opener) {
      var href = opener.getAttribute("href");
      index = list.findIndex(function (link) { return link.getAttribute("href") === href; });
    }
    return index;
  }

  function moreSentinel() {
    return document.querySelector("[data-viewer-more]");
  }

  function focusInitial(root) {
    var wanted = focusAfterSwap && root.querySelector('[data-viewer="' + focusAfterSwap + '"]:not([disabled])');
    focusAfterSwap = null;
    var target = wanted || root.querySelector("[data-initial-focus]") || root.querySelector("h1, h2");
    if (target) target.focus();
  }

  function openModal(link) {
    var modal = dialog();
    if (!modal || !window.htmx) return false;
    opener = link;
    fallbackFocus = null;
    loading = true;
    link.setAttribute("aria-busy", "true");
    htmx
      .ajax("GET", link.href, { source: link, target: "#image-modal", swap: "innerHTML settle:0ms" })
      .finally(function () {
        loading = false;
      })
      .then(function () {
        link.removeAttribute("aria-busy");
        if (!modal.querySelector(".image-panel")) {
          window.location.href = link.href; // the fragment did not come: show the page instead
          return;
        }
        modal.setAttribute("aria-labelledby", "image-title");
        var stepping = modal.open;
        if (!modal.open) modal.showModal();
        updateNav();
        placeholder(modal, link);
        if (stepping) announcePosition(modal);
        // A step while open was focused by the swap (htmx:afterSwap below); a first open here.
        var active = document.activeElement;
        if (!active || active === modal || !modal.contains(active)) focusInitial(modal);
        preloadNeighbours();
        if (queued) {
          var delta = queued;
          queued = 0;
          step(delta);
        }
      });
    return true;
  }

  // The panel's ←/→ buttons and "3 of 48": enabled as far as the list (and a next page) goes.
  function updateNav() {
    var modal = dialog();
    if (!modal) return;
    var list = thumbnails(), index = position(list);
    var prev = modal.querySelector('[data-viewer="prev"]');
    var next = modal.querySelector('[data-viewer="next"]');
    var where = modal.querySelector("[data-viewer-position]");
    if (prev) prev.disabled = index <= 0;
    if (next) {
      next.disabled = index === -1 || (index >= list.length - 1 && !moreSentinel());
      next.setAttribute("aria-busy", waitingForMore ? "true" : "false");
    }
    if (where) {
      where.textContent = index === -1 ? "" : interpolate(
        moreSentinel() ? gettext("%(index)s of %(count)s+") : gettext("%(index)s of %(count)s"),
        { index: index + 1, count: list.length },
        true
      );
    }
  }

  // Until the original has loaded, the thumbnail already in the page fills its box (the box has
  // the picture's ratio, so the thumbnail fits it exactly).
  function placeholder(modal, link) {
    var picture = modal.querySelector(".image-figure img");
    var thumb = link.querySelector("img");
    var src = thumb && (thumb.currentSrc || thumb.getAttribute("src"));
    if (!picture || !src || (picture.complete && picture.naturalWidth)) return;
    picture.style.backgroundImage = "url(" + JSON.stringify(src) + ")";
    picture.classList.add("is-loading");
    picture.addEventListener("load", function () {
      picture.style.backgroundImage = "";
      picture.classList.remove("is-loading");
    }, { once: true });
  }

  // A step replaces the panel: say which image is shown now (the live region outlives the panel).
  function announcePosition(modal) {
    var title = modal.querySelector("#image-title");
    var where = modal.querySelector("[data-viewer-position]");
    if (title) announce(title.textContent.trim() + (where && where.textContent ? " (" + where.textContent + ")" : ""));
  }

  // The original of the next image starts loading while this one is looked at.
  function preloadNeighbours() {
    var list = thumbnails(), index = position(list);
    var next = list[index + 1];
    if (next && next.dataset.full) new Image().src = next.dataset.full;
  }

  function step(delta) {
    if (loading) {
      queued = delta;
      return;
    }
    var modal = dialog();
    if (!modal || !modal.open || !modal.querySelector(".image-panel[data-image-id]")) return;
    var list = thumbnails(), index = position(list);
    if (index === -1) return;
    var target = list[index + delta];
    if (target) {
      show(target);
    } else if (delta > 0) {
      loadMore();
    }
  }

  function show(link) {
    link.scrollIntoView({ block: "nearest" }); // the page behind follows the viewer
    openModal(link);
  }

  // At the end of the list: reveal the page's sentinel as scrolling would, then go on once the
  // next page has been added (htmx:afterSettle below).
  function loadMore() {
    var more = moreSentinel();
    if (!more) {
      announce(gettext("This is the last image."));
      return;
    }
    waitingForMore = true;
    updateNav();
    announce(gettext("Loading more images…"));
    if (!more.hasAttribute("data-hx-revealed")) {
      more.setAttribute("data-hx-revealed", "true");
      htmx.trigger(more, "revealed");
    }
  }

  document.addEventListener("htmx:afterSettle", function () {
    if (!waitingForMore) return;
    var list = thumbnails(), index = position(list);
    if (index !== -1 && index < list.length - 1) {
      waitingForMore = false;
      focusAfterSwap = focusAfterSwap || "next";
      show(list[index + 1]);
    } else if (!moreSentinel()) {
      waitingForMore = false;
      updateNav();
    }
  });

  // Only a plain primary click: Ctrl/Cmd/Shift-click and middle-click still open the page.
  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    var link = event.target.closest && event.target.closest("a[data-modal]");
    if (!link || !link.href || dialog() && dialog().contains(link)) return;
    if (openModal(link)) event.preventDefault();
  });

  // The panel's buttons.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-viewer]");
    if (!button || !dialog() || !dialog().contains(button)) return;
    var what = button.getAttribute("data-viewer");
    if (what === "prev" || what === "next") {
      focusAfterSwap = what;
      step(what === "next" ? 1 : -1);
    } else if (what === "keys") {
      toggleKeys();
    }
  });

  function toggleKeys() {
    var modal = dialog();
    var list = modal && modal.querySelector("#viewer-keys");
    var button = modal && modal.querySelector('[data-viewer="keys"]');
    if (!list) return;
    list.hidden = !list.hidden;
    if (button) button.setAttribute("aria-expanded", String(!list.hidden));
    if (!list.hidden) list.scrollIntoView({ block: "nearest" });
  }

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  // Shortcuts while the viewer is open (not while typing in a field, e.g. a new tag).
  document.addEventListener("keydown", function (event) {
    var modal = dialog();
    if (!modal || !modal.open || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var panel = modal.querySelector(".image-panel[data-image-id]");
    if (!panel) return; // the delete step: only its own buttons and Escape
    var click = function (selector) {
      var node = panel.querySelector(selector);
      if (node) { event.preventDefault(); node.click(); }
    };
    switch (event.key) {
      case "ArrowLeft": event.preventDefault(); step(-1); break;
      case "ArrowRight": event.preventDefault(); step(1); break;
      case "?": event.preventDefault(); toggleKeys(); break;
      case "f": case "F": click(".favorite-button"); break;
      case "d": case "D": click("a.image-button[download]"); break;
      case "Delete": click("a.image-danger"); break;
    }
  });

  // A swipe on the picture goes to the previous or next image (the buttons do the same).
  var touchStart = null;
  document.addEventListener("touchstart", function (event) {
    var modal = dialog();
    if (!modal || !modal.open || event.touches.length !== 1 || !event.target.closest(".image-figure")) return;
    touchStart = { x: event.touches[0].clientX, y: event.touches[0].clientY };
  }, { passive: true });
  document.addEventListener("touchend", function (event) {
    if (!touchStart) return;
    var dx = event.changedTouches[0].clientX - touchStart.x, dy = event.changedTouches[0].clientY - touchStart.y;
    touchStart = null;
    if (Math.abs(dx) > 60 && Math.abs(dy) < 50) step(dx < 0 ? 1 : -1);
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
    waitingForMore = false;
    var target = opener && opener.isConnected ? opener : fallbackFocus;
    opener = null;
    if (target && target.isConnected) target.focus();
  }, true);

  // Swaps inside the dialog (the delete step, "Cancel, keep it"): put focus back in it.
  document.addEventListener("htmx:afterSwap", function (event) {
    var modal = dialog();
    if (!modal || !modal.open || event.detail.target !== modal) return;
    if (!modal.querySelector(".image-panel")) return;
    updateNav();
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

  // The grid behind shows a star for favourites: keep it in step with the viewer's button.
  document.addEventListener("atelier:image-favorite", function (event) {
    var detail = event.detail || {};
    var item = detail.id && document.getElementById("image-" + detail.id);
    if (!item || !item.classList.contains("gallery-item")) return;
    var star = item.querySelector(".gallery-star");
    if (!star && detail.favorite) {
      var label = window.pgettext ? pgettext("marked as a favourite", "Favourite") : "Favourite";
      star = document.createElement("span");
      star.className = "gallery-star";
      star.title = label;
      var mark = document.createElement("span");
      mark.setAttribute("aria-hidden", "true");
      mark.textContent = "★";
      var text = document.createElement("span");
      text.className = "visually-hidden";
      text.textContent = label;
      star.append(mark, text);
      item.appendChild(star);
    }
    if (star) star.hidden = !detail.favorite;
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
