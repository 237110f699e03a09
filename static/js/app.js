// Small progressive enhancements; every page works without this file.

// Translations: the JavaScript catalogue (config/urls.py, loaded just before this file) defines
// gettext, ngettext and interpolate in the page's language. If it did not load, English shows.
window.gettext = window.gettext || function (text) { return text; };
window.ngettext = window.ngettext || function (singular, plural, count) { return count === 1 ? singular : plural; };
window.interpolate = window.interpolate || function (format, values) {
  return format.replace(/%\((\w+)\)s/g, function (match, name) { return String(values[name]); });
};

(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The language switcher applies the choice at once; without JavaScript its button does.
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.requestSubmit();
  });

  // Ctrl/Cmd+Enter in a prompt submits its form (through htmx when it is there).
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    var field = event.target;
    if (!field.form || field.tagName !== "TEXTAREA") return;
    event.preventDefault();
    field.form.requestSubmit();
  });

  // The seed box and the "Random" box stay consistent.
  document.addEventListener("input", function (event) {
    if (event.target.id === "id_seed") {
      var random = document.getElementById("id_random_seed");
      if (random) random.checked = event.target.value.trim() === "";
    }
  });
  document.addEventListener("change", function (event) {
    if (event.target.id === "id_random_seed" && event.target.checked) {
      var seed = document.getElementById("id_seed");
      if (seed) seed.value = "";
    }
  });

  // Each model's limits (sizes, image count, seed, negative prompt) narrow the form's choices.
  // The server checks the same limits; this only saves a round trip.
  function sizeAllowed(limits, width, height) {
    if (limits.sizes.length) return limits.sizes.indexOf(width + "x" + height) !== -1;
    var multiple = limits.size_multiple || 1;
    var sides = [width, height].every(function (side) {
      return side >= limits.min_size && side <= limits.max_size && side % multiple === 0;
    });
    var pixels = width * height;
    if (limits.min_pixels && pixels < limits.min_pixels) return false;
    if (limits.max_pixels && pixels > limits.max_pixels) return false;
    if (limits.max_aspect_ratio && Math.max(width, height) / Math.min(width, height) > limits.max_aspect_ratio) return false;
    return sides;
  }

  function applyModelLimits(form) {
    var model = form.querySelector("#id_model");
    var option = model && model.selectedOptions[0];
    if (!option || !option.dataset.limits) return;
    var limits = JSON.parse(option.dataset.limits);
    narrow(form.querySelector("#id_size"), function (value) {
      if (!value) return true; // "Custom": the width and height boxes (static/js/create.js)
      var parts = value.split("x");
      return sizeAllowed(limits, parseInt(parts[0], 10), parseInt(parts[1], 10));
    });
    narrow(form.querySelector("#id_num_images"), function (value) {
      return parseInt(value, 10) <= limits.max_images;
    });
    toggle(form, "#id_negative_prompt", "#negative-unsupported", limits.supports_negative_prompt);
    toggle(form, "#id_seed", "#seed-unsupported", limits.supports_seed);
    toggle(form, "#id_random_seed", null, limits.supports_seed);
    toggle(form, "#id_steps", null, limits.supports_steps);
    toggle(form, "#id_scale", "#advanced-unsupported", limits.supports_steps || limits.supports_guidance);
    toggle(form, "#id_scale", null, limits.supports_guidance);
  }

  function narrow(select, allowed) {
    if (!select) return;
    var firstAllowed = null;
    Array.prototype.forEach.call(select.options, function (option) {
      var ok = allowed(option.value);
      option.disabled = !ok;
      option.hidden = !ok;
      if (ok && firstAllowed === null) firstAllowed = option;
    });
    if (select.selectedOptions[0] && select.selectedOptions[0].disabled && firstAllowed) firstAllowed.selected = true;
  }

  function toggle(form, fieldSelector, noteSelector, supported) {
    var field = form.querySelector(fieldSelector);
    if (field) field.disabled = !supported;
    var note = noteSelector && form.querySelector(noteSelector);
    if (note) note.hidden = supported;
  }

  document.addEventListener("change", function (event) {
    if (event.target.id === "id_model") applyModelLimits(event.target.form);
  });
  function applyAll() {
    document.querySelectorAll("#generate-form").forEach(applyModelLimits);
  }
  document.addEventListener("DOMContentLoaded", applyAll);
  document.addEventListener("htmx:afterSettle", applyAll);

  // A new task card replaces the "nothing yet" message, and the form's old errors go
  // (the form itself stays as it was, focus included, for the next variation).
  document.addEventListener("htmx:afterSwap", function (event) {
    var empty = document.getElementById("no-tasks");
    if (empty && document.querySelector("#task-list .task-card")) empty.remove();
    var form = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (form && form.id === "generate-form" && event.detail.xhr.status === 201) {
      form.querySelectorAll(".errors").forEach(function (node) { node.remove(); });
      var problem = document.getElementById("form-problem");
      if (problem) { problem.hidden = true; problem.textContent = ""; }
    }
  });

  // htmx does not swap error responses: say so instead of failing silently.
  document.addEventListener("htmx:responseError", function (event) {
    if (event.detail.elt && event.detail.elt.id === "generate-form") return; // create.js: by the button
    var status = { status: event.detail.xhr.status };
    showProblem(interpolate(gettext("The server answered %(status)s. Please try again."), status, true));
  });
  document.addEventListener("htmx:sendError", function (event) {
    if (event.detail.elt && event.detail.elt.id === "generate-form") return; // create.js: by the button
    showProblem(gettext("Atelier could not be reached. Check your connection; the page retries on its own."));
  });

  function showProblem(text) {
    var box = document.getElementById("problem");
    if (!box) {
      box = document.createElement("p");
      box.id = "problem";
      box.className = "problem";
      box.setAttribute("role", "alert");
      document.querySelector("main").prepend(box);
    }
    box.textContent = text;
  }
})();
