// The playground's browser script, served as /playground/app.js (a separate file, so the page's CSP needs no
// 'unsafe-inline'). Plain ES2020, no build step. It talks to this origin's public API with the user's key,
// which it keeps in localStorage only. (No backticks or dollar-brace in here: this is a template literal.)
export const PLAYGROUND_JS = String.raw`"use strict";
(function () {
  var KEY_STORE = "dimoo.playground.apiKey";
  var $ = function (id) { return document.getElementById(id); };
  var form = $("form"), keyInput = $("key"), prompt = $("prompt"), promptLabel = $("prompt-label");
  var sizeSel = $("size"), steps = $("steps"), guidance = $("guidance"), seed = $("seed"), maxTokens = $("max-tokens");
  var imageBlock = $("image-block"), fileInput = $("image"), photo = $("photo"), maskCanvas = $("mask");
  var maskTools = $("mask-tools"), brush = $("brush"), runBtn = $("run"), cancelBtn = $("cancel");
  var statusEl = $("status"), progress = $("progress"), progressText = $("progress-text"), errorEl = $("error");
  var result = $("result"), resultImg = $("result-img"), resultMeta = $("result-meta"), download = $("download");
  var answer = $("answer");

  var source = null;      // the uploaded image (an HTMLImageElement)
  var inflight = null;    // AbortController of the running request
  var objectUrls = [];

  // ---- the API key: localStorage only ----
  try { keyInput.value = localStorage.getItem(KEY_STORE) || ""; } catch (e) { /* storage disabled */ }
  keyInput.addEventListener("change", function () {
    try { localStorage.setItem(KEY_STORE, keyInput.value.trim()); } catch (e) { /* storage disabled */ }
  });
  $("forget").addEventListener("click", function () {
    try { localStorage.removeItem(KEY_STORE); } catch (e) { /* storage disabled */ }
    keyInput.value = "";
    keyInput.focus();
  });

  // ---- tasks ----
  function task() { return form.elements.namedItem("task").value; }
  var LABELS = {
    generate: ["Prompt", "Generate"],
    edit: ["Edit instruction", "Edit"],
    inpaint: ["What to paint in the masked area", "Inpaint"],
    understand: ["Question", "Ask"]
  };
  function showTask() {
    var t = task();
    imageBlock.hidden = t === "generate";
    maskTools.hidden = t !== "inpaint";
    maskCanvas.hidden = t !== "inpaint";
    promptLabel.textContent = LABELS[t][0];
    runBtn.textContent = LABELS[t][1];
    $("size-label").textContent = t === "generate" ? "Size" : "Max size";
    $("image-opts").hidden = t === "understand";
    $("edit-opts").hidden = t !== "edit";
    $("cache-opts").hidden = t !== "generate" && t !== "inpaint";
    $("blend-opts").hidden = t !== "inpaint";
    $("text-opts").hidden = t !== "understand";
  }
  Array.prototype.forEach.call(form.elements.namedItem("task"), function (r) { r.addEventListener("change", showTask); });
  sizeSel.addEventListener("change", function () { if (source) drawSource(); });

  // ---- the input image: scaled to fit the chosen size, sides multiples of 16 ----
  function box() {
    var p = sizeSel.value.split("x");
    return { w: Number(p[0]), h: Number(p[1]) };
  }
  function drawSource() {
    var b = box();
    var sw = source.naturalWidth || source.width, sh = source.naturalHeight || source.height;
    var scale = Math.min(1, b.w / sw, b.h / sh);
    var w = Math.max(64, Math.floor((sw * scale) / 16) * 16), h = Math.max(64, Math.floor((sh * scale) / 16) * 16);
    photo.width = w; photo.height = h;
    photo.getContext("2d").drawImage(source, 0, 0, w, h);
    resetMask(w, h); // also clears the mask
    $("image-size").textContent = "Sent as " + w + "\u00d7" + h + " px.";
    photo.hidden = false;
  }
  fileInput.addEventListener("change", function () {
    var f = fileInput.files && fileInput.files[0];
    if (!f) return;
    var url = URL.createObjectURL(f);
    var img = new Image();
    img.onload = function () { source = img; drawSource(); URL.revokeObjectURL(url); };
    img.onerror = function () { URL.revokeObjectURL(url); showError({ message: "This file is not an image the browser can read." }); };
    img.src = url;
  });

  // ---- the mask brush: painted = regenerate (sent as transparent pixels) ----
  // The model regenerates whole 16x16-pixel cells (those more than half masked), so strokes are kept on an
  // off-screen canvas and the visible mask shows, and sends, every cell a stroke touches: what you see is
  // what is regenerated.
  var CELL = 16, MASK_COLOR = "#ff2d55";
  var paint = document.createElement("canvas");
  var painting = false, last = null;
  function resetMask(w, h) {
    paint.width = maskCanvas.width = w;
    paint.height = maskCanvas.height = h;
  }
  function pos(e) {
    var r = maskCanvas.getBoundingClientRect();
    return { x: (e.clientX - r.left) * (maskCanvas.width / r.width), y: (e.clientY - r.top) * (maskCanvas.height / r.height) };
  }
  /** Redraws the visible mask's cells in the box [x0, x1) x [y0, y1) from the strokes. */
  function snap(x0, y0, x1, y1) {
    var cx0 = Math.max(0, Math.floor(x0 / CELL)), cy0 = Math.max(0, Math.floor(y0 / CELL));
    var cx1 = Math.min(paint.width / CELL, Math.ceil(x1 / CELL)), cy1 = Math.min(paint.height / CELL, Math.ceil(y1 / CELL));
    if (cx1 <= cx0 || cy1 <= cy0) return;
    var w = (cx1 - cx0) * CELL;
    var d = paint.getContext("2d", { willReadFrequently: true }).getImageData(cx0 * CELL, cy0 * CELL, w, (cy1 - cy0) * CELL).data;
    var m = maskCanvas.getContext("2d");
    m.fillStyle = MASK_COLOR;
    for (var cy = cy0; cy < cy1; cy++) {
      for (var cx = cx0; cx < cx1; cx++) {
        var hit = false;
        for (var y = 0; y < CELL && !hit; y++) {
          var row = ((cy - cy0) * CELL + y) * w + (cx - cx0) * CELL;
          for (var x = 0; x < CELL; x++) if (d[(row + x) * 4 + 3] >= 128) { hit = true; break; }
        }
        if (hit) m.fillRect(cx * CELL, cy * CELL, CELL, CELL);
        else m.clearRect(cx * CELL, cy * CELL, CELL, CELL);
      }
    }
  }
  function snapAll() { snap(0, 0, paint.width, paint.height); }
  function stroke(a, b) {
    var ctx = paint.getContext("2d", { willReadFrequently: true });
    var width = Number(brush.value) * (maskCanvas.width / maskCanvas.getBoundingClientRect().width);
    ctx.strokeStyle = MASK_COLOR;
    ctx.lineCap = "round";
    ctx.lineWidth = width;
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x + 0.01, b.y);
    ctx.stroke();
    var r = width / 2 + 1;
    snap(Math.min(a.x, b.x) - r, Math.min(a.y, b.y) - r, Math.max(a.x, b.x) + r, Math.max(a.y, b.y) + r);
  }
  maskCanvas.addEventListener("pointerdown", function (e) {
    painting = true;
    maskCanvas.setPointerCapture(e.pointerId);
    last = pos(e);
    stroke(last, last);
  });
  maskCanvas.addEventListener("pointermove", function (e) {
    if (!painting) return;
    var p = pos(e);
    stroke(last, p);
    last = p;
  });
  ["pointerup", "pointercancel"].forEach(function (n) { maskCanvas.addEventListener(n, function () { painting = false; }); });
  $("mask-clear").addEventListener("click", function () {
    paint.getContext("2d").clearRect(0, 0, paint.width, paint.height);
    maskCanvas.getContext("2d").clearRect(0, 0, maskCanvas.width, maskCanvas.height);
  });
  $("mask-invert").addEventListener("click", function () {
    var t = document.createElement("canvas");
    t.width = maskCanvas.width; t.height = maskCanvas.height;
    var c = t.getContext("2d");
    c.fillStyle = MASK_COLOR;
    c.fillRect(0, 0, t.width, t.height);
    c.globalCompositeOperation = "destination-out";
    c.drawImage(maskCanvas, 0, 0);
    var p = paint.getContext("2d");
    p.clearRect(0, 0, t.width, t.height);
    p.drawImage(t, 0, 0);
    snapAll();
  });
  function maskPainted() {
    var d = maskCanvas.getContext("2d").getImageData(0, 0, maskCanvas.width, maskCanvas.height).data;
    for (var i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
    return false;
  }
  /** OpenAI's convention: opaque = keep, transparent = regenerate. */
  function maskPng() {
    var t = document.createElement("canvas");
    t.width = maskCanvas.width; t.height = maskCanvas.height;
    var c = t.getContext("2d");
    c.fillStyle = "#000";
    c.fillRect(0, 0, t.width, t.height);
    c.globalCompositeOperation = "destination-out";
    c.drawImage(maskCanvas, 0, 0);
    return toBlob(t);
  }
  function toBlob(canvas) {
    return new Promise(function (resolve, reject) {
      canvas.toBlob(function (b) { b ? resolve(b) : reject(new Error("could not encode the image")); }, "image/png");
    });
  }

  // ---- output ----
  function setStatus(s) { statusEl.textContent = s; }
  function showError(err, requestId, status) {
    errorEl.replaceChildren();
    var h = document.createElement("strong");
    h.textContent = (status ? "Error " + status + ": " : "Error: ") + (err.message || "unknown error");
    errorEl.append(h);
    var parts = [];
    if (err.type) parts.push("type " + err.type);
    if (err.code) parts.push("code " + err.code);
    if (err.param) parts.push("param " + err.param);
    if (requestId) parts.push("request " + requestId);
    if (parts.length) {
      var p = document.createElement("p");
      p.className = "error-details";
      p.textContent = parts.join(" \u00b7 ");
      errorEl.append(p);
    }
    errorEl.hidden = false;
  }
  function clearOutput() {
    errorEl.hidden = true;
    errorEl.replaceChildren();
    result.hidden = true;
    answer.hidden = true;
    answer.textContent = "";
    objectUrls.forEach(function (u) { URL.revokeObjectURL(u); });
    objectUrls = [];
    progress.max = 1;
    progress.removeAttribute("value"); // indeterminate until the first step
    progressText.textContent = "";
  }
  function b64Blob(b64, mime) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Blob([bytes], { type: mime });
  }
  var MIME = { png: "image/png", webp: "image/webp", jpeg: "image/jpeg" };
  function showImage(ev, final) {
    var fmt = ev.output_format || "png";
    var url = URL.createObjectURL(b64Blob(ev.b64_json, MIME[fmt] || "image/png"));
    objectUrls.push(url);
    resultImg.src = url;
    resultImg.classList.toggle("preview", !final);
    result.hidden = false;
    if (final) {
      resultImg.alt = "Result for: " + prompt.value.trim();
      var name = "dimoo-" + (ev.seed != null ? ev.seed : Date.now()) + "." + (fmt === "jpeg" ? "jpg" : fmt);
      download.href = url;
      download.download = name;
      download.hidden = false;
      var meta = [ev.size];
      if (ev.seed != null) meta.push("seed " + ev.seed);
      if (ev.usage) meta.push(ev.usage.steps + " steps", ev.usage.billing_units + " megapixel-steps");
      resultMeta.textContent = meta.join(" \u00b7 ");
    } else {
      resultImg.alt = "Preview " + ((ev.partial_image_index || 0) + 1);
      download.hidden = true;
      resultMeta.textContent = "Preview " + ((ev.partial_image_index || 0) + 1) + " (" + ev.size + ")";
    }
  }
  function onProgress(ev) {
    progress.max = ev.steps;
    progress.value = ev.step;
    progressText.textContent = "Step " + ev.step + " of " + ev.steps;
  }

  // ---- requests ----
  async function apiError(res) {
    var text = await res.text();
    var err;
    try { err = JSON.parse(text).error; } catch (e) { /* not JSON */ }
    showError(err || { message: text || res.statusText }, res.headers.get("x-request-id"), res.status);
  }
  /** Calls fn(event, data) for every Server-Sent Event of the response. */
  async function readSSE(res, fn) {
    var reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    var buf = "";
    for (;;) {
      var r = await reader.read();
      if (r.done) break;
      buf = (buf + r.value).replace(/\r\n?/g, "\n");
      var i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        var block = buf.slice(0, i), ev = "message", data = [];
        buf = buf.slice(i + 2);
        block.split("\n").forEach(function (line) {
          if (line.indexOf("event:") === 0) ev = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
        });
        if (data.length) fn(ev, data.join("\n"));
      }
    }
  }
  function common(fields) {
    if (steps.value) fields.steps = Number(steps.value);
    if (seed.value !== "") fields.seed = Number(seed.value);
    return fields;
  }
  async function imageRequest(t, signal) {
    var res;
    var headers = { authorization: "Bearer " + keyInput.value.trim() };
    var fields = common({ prompt: prompt.value, stream: true, partial_images: 2 });
    if (guidance.value !== "") fields.guidance_scale = Number(guidance.value);
    // The Max-Logit cache applies to every image task (docs/edge.md).
    if ($("ml-cache").checked) fields.ml_cache = true;
    if (t === "generate") {
      fields.size = sizeSel.value;
      headers["content-type"] = "application/json";
      res = await fetch("/v1/images/generations", { method: "POST", headers: headers, body: JSON.stringify(fields), signal: signal });
    } else {
      var fd = new FormData();
      Object.keys(fields).forEach(function (k) { fd.append(k, String(fields[k])); });
      fd.append("task", t);
      if (t === "edit") fd.append("edit_type", $("edit-type").value);
      fd.append("image", await toBlob(photo), "image.png");
      if (t === "inpaint") fd.append("mask", await maskPng(), "mask.png");
      // Inpainting blends the result into the photo unless asked for the raw decode (docs/edge.md).
      if (t === "inpaint" && !$("keep-photo").checked) fd.append("raw_decode", "true");
      res = await fetch("/v1/images/edits", { method: "POST", headers: headers, body: fd, signal: signal });
    }
    if (!res.ok) return apiError(res);
    var done = false, failed = false;
    await readSSE(res, function (ev, data) {
      var d = JSON.parse(data);
      if (ev === "error") { failed = true; showError(d.error || d, res.headers.get("x-request-id")); }
      else if (/\.progress$/.test(ev)) onProgress(d);
      else if (/\.partial_image$/.test(ev)) showImage(d, false);
      else if (/\.completed$/.test(ev)) { done = true; showImage(d, true); }
    });
    if (!done && !failed) showError({ message: "The stream ended before the result arrived." }, res.headers.get("x-request-id"));
    return done;
  }
  async function understandRequest(signal) {
    var dataUrl = photo.toDataURL("image/png");
    var body = common({
      messages: [{ role: "user", content: [{ type: "text", text: prompt.value }, { type: "image_url", image_url: { url: dataUrl } }] }],
      stream: true
    });
    if (maxTokens.value) body.max_tokens = Number(maxTokens.value);
    var res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { authorization: "Bearer " + keyInput.value.trim(), "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: signal
    });
    if (!res.ok) return apiError(res);
    answer.hidden = false;
    var finished = false, failed = false;
    await readSSE(res, function (_ev, data) {
      if (data === "[DONE]") { finished = true; return; }
      var d = JSON.parse(data);
      if (d.error) { failed = true; showError(d.error, res.headers.get("x-request-id")); return; }
      var c = d.choices && d.choices[0];
      if (c && c.delta && c.delta.content) answer.textContent += c.delta.content;
    });
    if (!finished && !failed) showError({ message: "The stream ended before the answer was complete." }, res.headers.get("x-request-id"));
    if (finished && !answer.textContent) answer.textContent = "(The model returned an empty answer.)";
    return finished;
  }

  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    if (inflight) return;
    var t = task();
    clearOutput();
    if (!keyInput.value.trim()) { showError({ message: "Enter your API key first (npm start prints one)." }); keyInput.focus(); return; }
    if (!prompt.value.trim()) { showError({ message: "Write a " + LABELS[t][0].toLowerCase() + " first." }); prompt.focus(); return; }
    if (t !== "generate" && !source) { showError({ message: "Choose an image first." }); fileInput.focus(); return; }
    if (t === "inpaint" && !maskPainted()) { showError({ message: "Paint over the area to regenerate first." }); return; }
    try { localStorage.setItem(KEY_STORE, keyInput.value.trim()); } catch (err) { /* storage disabled */ }
    inflight = new AbortController();
    runBtn.disabled = true;
    cancelBtn.disabled = false;
    form.setAttribute("aria-busy", "true");
    setStatus(t === "understand" ? "Thinking\u2026" : "Generating\u2026");
    var started = performance.now();
    try {
      var ok = t === "understand" ? await understandRequest(inflight.signal) : await imageRequest(t, inflight.signal);
      setStatus(ok ? "Done in " + ((performance.now() - started) / 1000).toFixed(1) + " s." : "Failed.");
    } catch (err) {
      if (err && err.name === "AbortError") setStatus("Cancelled.");
      else { setStatus("Failed."); showError({ message: "Network error: " + (err && err.message ? err.message : String(err)) }); }
    } finally {
      inflight = null;
      runBtn.disabled = false;
      cancelBtn.disabled = true;
      form.removeAttribute("aria-busy");
    }
  });
  cancelBtn.addEventListener("click", function () { if (inflight) inflight.abort(); });

  showTask();
})();
`;
