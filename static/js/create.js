// The create form: width and height with the model's limits, presets as shortcuts and an
// aspect lock; the Generate button's problems shown next to it; and "PNG info": a PNG dropped
// on the page (or chosen) fills the form from its settings, read here in the browser.
// The server checks everything again; without this file the form still works.
(function () {
  "use strict";

  function theForm() { return document.getElementById("generate-form"); }

  function limitsOf(form) {
    var model = form.querySelector("#id_model");
    var option = model && model.selectedOptions[0];
    if (!option || !option.dataset.limits) return null;
    try { return JSON.parse(option.dataset.limits); } catch (error) { return null; }
  }

  function whole(input) {
    var value = parseInt(input && input.value, 10);
    return isNaN(value) ? null : value;
  }

  // --- size: presets, limits, aspect lock ----------------------------------------------------

  function sizeAllowed(limits, width, height) {
    if (!width || !height) return false;
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

  // The nearest side the model takes: a multiple of its step, within its bounds.
  function fitSide(limits, value) {
    if (!limits || limits.sizes.length) return Math.round(value);
    var multiple = limits.size_multiple || 1;
    var low = Math.ceil(limits.min_size / multiple) * multiple;
    var high = Math.floor(limits.max_size / multiple) * multiple;
    return Math.min(high, Math.max(low, Math.round(value / multiple) * multiple));
  }

  // The preset that matches width × height is shown as chosen; otherwise "Custom".
  function syncPreset(form) {
    var select = form.querySelector("#id_size");
    if (!select) return;
    var value = whole(form.querySelector("#id_width")) + "x" + whole(form.querySelector("#id_height"));
    var match = Array.prototype.find.call(select.options, function (option) {
      return option.value === value && !option.disabled;
    });
    select.value = match ? value : "";
  }

  function setSize(form, width, height) {
    form.querySelector("#id_width").value = width;
    form.querySelector("#id_height").value = height;
    rememberRatio(form);
    syncPreset(form);
  }

  function rememberRatio(form) {
    var width = whole(form.querySelector("#id_width"));
    var height = whole(form.querySelector("#id_height"));
    if (width && height) form.dataset.ratio = String(width / height);
  }

  function applySizeLimits(form) {
    var width = form.querySelector("#id_width");
    var height = form.querySelector("#id_height");
    var limits = limitsOf(form);
    if (!width || !height || !limits) return;
    var lock = form.querySelector(".size-lock");
    if (lock) lock.hidden = false;
    [width, height].forEach(function (input) {
      if (limits.sizes.length) {
        input.min = "1"; input.removeAttribute("max"); input.step = "1";
      } else {
        input.min = String(limits.min_size); input.max = String(limits.max_size);
        input.step = String(limits.size_multiple || 1);
      }
    });
    var help = form.querySelector("#size-help");
    if (help) {
      help.textContent = limits.sizes.length
        ? interpolate(help.dataset.fixedTemplate, { sizes: limits.sizes.map(function (s) { return s.replace("x", "×"); }).join(", ") }, true)
        : interpolate(help.dataset.template, { min: limits.min_size, max: limits.max_size, multiple: limits.size_multiple || 1 }, true);
    }
    if (!sizeAllowed(limits, whole(width), whole(height))) {
      // The size typed is not one this model makes: take the first preset it does.
      var select = form.querySelector("#id_size");
      var first = select && Array.prototype.find.call(select.options, function (option) {
        return option.value && !option.disabled;
      });
      if (first) {
        var parts = first.value.split("x");
        setSize(form, parts[0], parts[1]);
        return;
      }
    }
    syncPreset(form);
    rememberRatio(form);
  }

  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (!form || form.id !== "generate-form") return;
    if (event.target.id === "id_size" && event.target.value) {
      var parts = event.target.value.split("x");
      setSize(form, parts[0], parts[1]);
    } else if (event.target.id === "id_model") {
      applySizeLimits(form);
    } else if (event.target.id === "size-lock" && event.target.checked) {
      rememberRatio(form);
    } else if (event.target.id === "id_width" || event.target.id === "id_height") {
      // Leaving the box: round to a size the model takes, keeping the ratio when locked.
      var limits = limitsOf(form);
      var value = whole(event.target);
      if (value && limits) {
        event.target.value = fitSide(limits, value);
        follow(form, event.target);
      }
      syncPreset(form);
    }
  });

  // With the lock on, the other side follows as one types.
  function follow(form, changed) {
    var lock = form.querySelector("#size-lock");
    var ratio = parseFloat(form.dataset.ratio);
    var value = whole(changed);
    if (!lock || !lock.checked || !ratio || !value) return;
    var limits = limitsOf(form);
    if (changed.id === "id_width") form.querySelector("#id_height").value = fitSide(limits, value / ratio);
    else form.querySelector("#id_width").value = fitSide(limits, value * ratio);
  }

  document.addEventListener("input", function (event) {
    var form = event.target.form;
    if (!form || form.id !== "generate-form") return;
    if (event.target.id === "id_width" || event.target.id === "id_height") {
      follow(form, event.target);
      if (!(form.querySelector("#size-lock") || {}).checked) rememberRatio(form);
      syncPreset(form);
    }
  });

  // --- problems next to the button -----------------------------------------------------------

  function fromGenerateForm(event) {
    var elt = event.detail && event.detail.requestConfig ? event.detail.requestConfig.elt : event.detail && event.detail.elt;
    return elt && elt.id === "generate-form";
  }

  // A new submission: the last one's errors are stale.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!fromGenerateForm(event)) return;
    var form = theForm();
    form.querySelectorAll(".errors").forEach(function (node) { node.remove(); });
    var problem = document.getElementById("form-problem");
    if (problem) { problem.hidden = true; problem.textContent = ""; }
    var top = document.getElementById("problem");
    if (top) top.remove();
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    if (!fromGenerateForm(event)) return;
    var status = event.detail.xhr && event.detail.xhr.status;
    var shown = status === 429 ? document.getElementById("form-problem") : document.querySelector("#generate-form .errors");
    if (shown && status !== 201) shown.scrollIntoView({ block: "nearest" });
  });

  // A failure the server did not explain (a 500, no connection) also shows by the button.
  function problemByButton(text) {
    var problem = document.getElementById("form-problem");
    if (!problem) return;
    problem.textContent = text;
    problem.hidden = false;
    problem.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("htmx:responseError", function (event) {
    if (!fromGenerateForm(event)) return;
    problemByButton(interpolate(gettext("The server answered %(status)s. Please try again."), { status: event.detail.xhr.status }, true));
  });
  document.addEventListener("htmx:sendError", function (event) {
    if (!fromGenerateForm(event)) return;
    problemByButton(gettext("Atelier could not be reached. Check your connection; the page retries on its own."));
  });

  // --- PNG info: read a picture's settings -----------------------------------------------------

  var PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

  function inflate(bytes) {
    if (typeof DecompressionStream === "undefined") return Promise.resolve(null);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (buffer) { return new Uint8Array(buffer); }, function () { return null; });
  }

  // The text chunks (tEXt, zTXt, iTXt) of a PNG as {key: text}; null if it is not a PNG.
  function readTextChunks(buffer) {
    var bytes = new Uint8Array(buffer);
    var view = new DataView(buffer);
    if (bytes.length < 8 || PNG_SIGNATURE.some(function (value, i) { return bytes[i] !== value; })) return Promise.resolve(null);
    var latin1 = new TextDecoder("latin1");
    var utf8 = new TextDecoder("utf-8");
    var pending = [];
    var position = 8;
    while (position + 8 <= bytes.length) {
      var length = view.getUint32(position);
      var type = latin1.decode(bytes.subarray(position + 4, position + 8));
      var data = bytes.subarray(position + 8, Math.min(bytes.length, position + 8 + length));
      position += 12 + length;
      if (type === "IEND") break;
      if (type !== "tEXt" && type !== "zTXt" && type !== "iTXt") continue;
      var nul = data.indexOf(0);
      if (nul < 1) continue;
      var key = latin1.decode(data.subarray(0, nul));
      if (type === "tEXt") {
        pending.push(Promise.resolve([key, latin1.decode(data.subarray(nul + 1))]));
      } else if (type === "zTXt") {
        pending.push(inflate(data.subarray(nul + 2)).then(function (key, text) { return [key, text && latin1.decode(text)]; }.bind(null, key)));
      } else {
        var compressed = data[nul + 1] === 1;
        var rest = nul + 3;
        var languageEnd = data.indexOf(0, rest);
        var translatedEnd = languageEnd < 0 ? -1 : data.indexOf(0, languageEnd + 1);
        if (translatedEnd < 0) continue;
        var body = data.subarray(translatedEnd + 1);
        pending.push((compressed ? inflate(body) : Promise.resolve(body)).then(function (key, text) {
          return [key, text && utf8.decode(text)];
        }.bind(null, key)));
      }
    }
    return Promise.all(pending).then(function (pairs) {
      var texts = {};
      pairs.forEach(function (pair) { if (pair[1] !== null && pair[1] !== undefined) texts[pair[0]] = pair[1]; });
      return texts;
    });
  }

  // AUTOMATIC1111's `parameters`: the prompt, an optional "Negative prompt:" part, and a last
  // line of "Key: value" pairs (values with , : or a newline are JSON-quoted).
  var PARAM_PAIR = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;

  function parsePairs(line) {
    var pairs = [];
    var match;
    PARAM_PAIR.lastIndex = 0;
    while ((match = PARAM_PAIR.exec(line)) !== null) {
      if (match[0] === "") { PARAM_PAIR.lastIndex += 1; continue; }
      var value = match[2].trim();
      if (value.charAt(0) === '"') { try { value = JSON.parse(value); } catch (error) { /* kept as written */ } }
      pairs.push([match[1].trim(), value]);
    }
    return pairs;
  }

  function parseA1111(text) {
    var lines = text.replace(/\r\n?/g, "\n").trim().split("\n");
    var last = lines[lines.length - 1] || "";
    var pairs = parsePairs(last);
    if (pairs.length >= 3) lines.pop(); else pairs = [];
    var prompt = [], negative = [], inNegative = false;
    lines.forEach(function (line) {
      if (!inNegative && line.indexOf("Negative prompt:") === 0) { inNegative = true; line = line.slice("Negative prompt:".length).trim(); }
      (inNegative ? negative : prompt).push(line);
    });
    var settings = { prompt: prompt.join("\n").trim(), negative_prompt: negative.join("\n").trim() };
    var unused = [];
    pairs.forEach(function (pair) {
      var key = pair[0], value = pair[1];
      var size = /^(\d+)\s*x\s*(\d+)$/.exec(value);
      if (key === "Steps") settings.steps = value;
      else if (key === "CFG scale") settings.guidance_scale = value;
      else if (key === "Seed") settings.seed = value;
      else if (key === "Size" && size) { settings.width = size[1]; settings.height = size[2]; }
      else if (key === "Model") settings.model = value;
      else if (key === "Provider") settings.provider = value;
      else if (key === "Version" && /^atelier /.test(value)) { /* ours: nothing to fill */ }
      else unused.push(key + ": " + value);
    });
    settings.unused = unused;
    return settings;
  }

  // Atelier's own `atelier` chunk (JSON, generator/services.py), else `parameters`.
  function settingsFrom(texts) {
    if (texts.atelier) {
      try {
        var ours = JSON.parse(texts.atelier);
        if (ours && typeof ours.prompt === "string") { ours.unused = []; return ours; }
      } catch (error) { /* fall back to parameters */ }
    }
    if (texts.parameters && texts.parameters.trim().charAt(0) !== "{") return parseA1111(texts.parameters);
    return null;
  }

  function setField(form, selector, value) {
    var field = form.querySelector(selector);
    if (!field || value === undefined || value === null || value === "") return false;
    field.value = String(value);
    field.dispatchEvent(new Event("input", { bubbles: true }));
    return true;
  }

  // The model select's option for a provider and model (or a model id alone, from A1111).
  function findModel(form, provider, model) {
    var select = form.querySelector("#id_model");
    if (!select || !model) return null;
    return Array.prototype.find.call(select.options, function (option) {
      var parts = option.value.split(":");
      var id = parts.slice(1).join(":");
      return (provider ? parts[0] === provider : true) && (id === model || option.textContent.trim() === model);
    }) || null;
  }

  function fill(form, settings) {
    var filled = [], missed = settings.unused.slice();
    if (settings.model) {
      var option = findModel(form, settings.provider, settings.model);
      if (option && !option.disabled) {
        form.querySelector("#id_model").value = option.value;
        form.querySelector("#id_model").dispatchEvent(new Event("change", { bubbles: true }));
        filled.push(interpolate(gettext("model %(model)s"), { model: option.textContent.trim() }, true));
      } else {
        missed.push(interpolate(gettext("model %(model)s (not offered here)"), { model: settings.model }, true));
      }
    }
    if (setField(form, "#id_prompt", settings.prompt)) filled.push(gettext("prompt"));
    var negative = form.querySelector("#id_negative_prompt");
    if (negative) {
      negative.value = settings.negative_prompt || "";
      if (settings.negative_prompt) filled.push(gettext("negative prompt"));
    }
    var width = parseInt(settings.width, 10), height = parseInt(settings.height, 10);
    if (width > 0 && height > 0) {
      setSize(form, width, height);
      filled.push(interpolate(gettext("size %(width)s×%(height)s"), { width: width, height: height }, true));
    }
    var advanced = false;
    // Atelier's own settings say when a picture had no steps or guidance: the provider's default.
    if (settings.steps === null && form.querySelector("#id_steps")) form.querySelector("#id_steps").value = "";
    if (settings.guidance_scale === null && form.querySelector("#id_scale")) form.querySelector("#id_scale").value = "";
    if (settings.steps !== undefined && settings.steps !== null && setField(form, "#id_steps", parseInt(settings.steps, 10))) { filled.push(gettext("steps")); advanced = true; }
    if (settings.guidance_scale !== undefined && settings.guidance_scale !== null && setField(form, "#id_scale", parseFloat(settings.guidance_scale))) { filled.push(gettext("guidance scale")); advanced = true; }
    if (advanced && form.querySelector("details.advanced")) form.querySelector("details.advanced").open = true;
    var seed = parseInt(settings.seed, 10);
    if (!isNaN(seed) && seed >= 0) {
      setField(form, "#id_seed", seed);
      var random = form.querySelector("#id_random_seed");
      if (random) random.checked = false;
      filled.push(interpolate(gettext("seed %(seed)s"), { seed: seed }, true));
    } else if (settings.seed !== undefined) {
      var box = form.querySelector("#id_random_seed");
      if (box) { box.checked = true; box.dispatchEvent(new Event("change", { bubbles: true })); }
      filled.push(gettext("random seed"));
    }
    return { filled: filled, missed: missed };
  }

  function report(text, warning) {
    var result = document.getElementById("png-import-result");
    if (!result) return;
    result.textContent = text;
    result.hidden = false;
    result.classList.toggle("png-import-warning", Boolean(warning));
  }

  function importFile(file) {
    var form = theForm();
    if (!form || !file) return;
    file.arrayBuffer().then(readTextChunks).then(function (texts) {
      if (texts === null) {
        report(interpolate(gettext("%(name)s is not a PNG file: only PNG pictures carry their settings."), { name: file.name }, true), true);
        return;
      }
      var settings = settingsFrom(texts);
      if (!settings || !settings.prompt) {
        report(interpolate(gettext("%(name)s carries no generation settings Atelier can read."), { name: file.name }, true), true);
        return;
      }
      var outcome = fill(form, settings);
      var text = interpolate(gettext("Filled in from %(name)s: %(fields)s."), { name: file.name, fields: outcome.filled.join(", ") }, true);
      if (outcome.missed.length) {
        text += " " + interpolate(gettext("Not used: %(fields)s."), { fields: outcome.missed.join("; ") }, true);
      }
      report(text, outcome.missed.length > 0);
      form.querySelector("#id_prompt").focus();
    }, function () {
      report(interpolate(gettext("%(name)s could not be read."), { name: file.name }, true), true);
    });
  }

  function hasFiles(event) {
    return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types || [], "Files") !== -1;
  }

  document.addEventListener("dragover", function (event) {
    if (!theForm() || !hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    document.body.classList.add("png-dragging");
  });
  document.addEventListener("dragleave", function (event) {
    if (event.relatedTarget === null) document.body.classList.remove("png-dragging");
  });
  document.addEventListener("drop", function (event) {
    document.body.classList.remove("png-dragging");
    if (!theForm() || !event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    importFile(event.dataTransfer.files[0]);
  });
  document.addEventListener("change", function (event) {
    if (event.target.id !== "png-import-file" || !event.target.files.length) return;
    importFile(event.target.files[0]);
    event.target.value = "";
  });

  function start() {
    var form = theForm();
    if (!form) return;
    var importer = document.getElementById("png-import");
    if (importer) importer.hidden = false;
    applySizeLimits(form);
  }
  document.addEventListener("DOMContentLoaded", start);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.elt && event.detail.elt.id === "generate-form") start();
    else if (fromGenerateForm(event) && event.detail.xhr && event.detail.xhr.status === 200) start();
  });
})();
