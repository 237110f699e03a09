// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

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

  // A new task card replaces the "nothing yet" message, and the form's old errors go
  // (the form itself stays as it was, focus included, for the next variation).
  document.addEventListener("htmx:afterSwap", function (event) {
    var empty = document.getElementById("no-tasks");
    if (empty && document.querySelector("#task-list .task-card")) empty.remove();
    var form = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (form && form.id === "generate-form" && event.detail.xhr.status === 201) {
      form.querySelectorAll(".errors").forEach(function (node) { node.remove(); });
    }
  });

  // htmx does not swap error responses: say so instead of failing silently.
  document.addEventListener("htmx:responseError", function (event) {
    showProblem("The server answered " + event.detail.xhr.status + ". Please try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    showProblem("Atelier could not be reached. Check your connection; the page retries on its own.");
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
