// The create form's style preset picker: show the chosen preset's card (prompts:preset_card).
// Without this script the select still works: the preset is applied when the form is sent.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!(select instanceof HTMLSelectElement) || select.id !== "id_preset") return;
    var card = document.getElementById("preset-card");
    var option = select.selectedOptions[0];
    var url = option ? option.dataset.card : "";
    if (!card) return;
    if (!url) {
      card.replaceChildren();
      card.hidden = true;
      return;
    }
    if (window.htmx) window.htmx.ajax("GET", url, { target: "#preset-card", swap: "outerHTML" });
  });
})();
