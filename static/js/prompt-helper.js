// The prompt helper on the create page: the "Improve" button is shown (without JavaScript a
// plain submit button inside <noscript> takes its place), and the suggestion panel's buttons
// work: Accept puts the suggestion in the prompt box and remembers the prompt as typed (the
// hidden original_prompt field, so the task keeps both); Edit does the same and puts the cursor
// in the box; Dismiss closes the panel. Nothing is generated until Generate is pressed.
(function () {
  "use strict";

  function showButtons(root) {
    (root || document).querySelectorAll(".prompt-helper [data-js-only]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function panel() { return document.getElementById("prompt-suggestion"); }

  function closePanel() {
    var box = panel();
    if (box) box.replaceChildren();
  }

  function accept(button, focus) {
    var form = button.closest("form") || document.getElementById("generate-form");
    var prompt = form && form.querySelector("#id_prompt");
    var original = form && form.querySelector("#id_original_prompt");
    if (!prompt) return;
    // The prompt as first typed, when a suggestion is accepted on top of an earlier one.
    if (original && !original.value) original.value = button.dataset.original || "";
    prompt.value = button.dataset.suggestion || "";
    prompt.dispatchEvent(new Event("input", { bubbles: true }));
    closePanel();
    if (focus) {
      prompt.focus();
      prompt.setSelectionRange(prompt.value.length, prompt.value.length);
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-suggestion-action]");
    if (!button) return;
    var action = button.dataset.suggestionAction;
    if (action === "accept") accept(button, false);
    else if (action === "edit") accept(button, true);
    else closePanel();
  });

  // A prompt box emptied by hand starts over: nothing of the earlier prompt is kept.
  document.addEventListener("input", function (event) {
    if (!event.target || event.target.id !== "id_prompt" || event.target.value.trim()) return;
    var original = document.getElementById("id_original_prompt");
    if (original) original.value = "";
  });

  document.addEventListener("DOMContentLoaded", function () { showButtons(); });
  document.addEventListener("htmx:afterSettle", function () { showButtons(); });  // a re-rendered form too
})();
