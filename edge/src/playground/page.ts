// The playground page (GET /). No inline script or style: app.js and app.css are separate routes, so the
// page runs under a strict CSP (see routes/playground.ts).
export const PLAYGROUND_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Lumina-DiMOO playground</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/playground/app.css">
<script src="/playground/app.js" defer></script>
</head>
<body>
<header>
  <h1>Lumina-DiMOO playground</h1>
  <p>Generate, edit, inpaint and understand images through this server's <a href="/openapi.json">OpenAI-compatible API</a>.</p>
</header>
<main>
  <form id="form" novalidate>
    <div class="field key">
      <label for="key">API key</label>
      <div class="row">
        <input id="key" name="key" type="password" autocomplete="off" spellcheck="false" placeholder="dmo_live_…" aria-describedby="key-hint">
        <button type="button" id="forget">Forget</button>
      </div>
      <p id="key-hint" class="hint">Kept only in this browser (localStorage) and sent only to this server.</p>
    </div>

    <fieldset class="tasks">
      <legend>Task</legend>
      <label><input type="radio" name="task" value="generate" checked> Text to image</label>
      <label><input type="radio" name="task" value="edit"> Edit</label>
      <label><input type="radio" name="task" value="inpaint"> Inpaint</label>
      <label><input type="radio" name="task" value="understand"> Understand</label>
    </fieldset>

    <div id="image-block" class="field" hidden>
      <label for="image">Image</label>
      <input id="image" type="file" accept="image/png,image/jpeg,image/webp" aria-describedby="image-size">
      <p id="image-size" class="hint"></p>
      <div class="canvas-wrap">
        <canvas id="photo" width="0" height="0" hidden aria-label="The input image"></canvas>
        <canvas id="mask" width="0" height="0" hidden aria-label="Mask: paint over the area to regenerate"></canvas>
      </div>
      <div id="mask-tools" hidden>
        <p id="mask-hint" class="hint">Paint over what to regenerate; the model redraws whole 16×16-pixel cells, shown in red. “Invert mask” on an empty mask selects everything.</p>
        <div class="row">
          <label for="brush">Brush</label>
          <input id="brush" type="range" min="4" max="96" value="24" aria-describedby="mask-hint">
          <button type="button" id="mask-clear">Clear mask</button>
          <button type="button" id="mask-invert">Invert mask</button>
        </div>
      </div>
    </div>

    <div id="edit-opts" class="field" hidden>
      <label for="edit-type">Kind of edit</label>
      <select id="edit-type">
        <option value="edit_replace">Replace something</option>
        <option value="edit_add">Add something</option>
        <option value="edit_remove">Remove something</option>
        <option value="edit_background">Change the background</option>
        <option value="edit_text_transfer">Change text</option>
      </select>
    </div>

    <div class="field">
      <label for="prompt" id="prompt-label">Prompt</label>
      <textarea id="prompt" rows="3" maxlength="4000">a red fox in the snow, watercolor</textarea>
    </div>

    <div class="grid">
      <div class="field">
        <label for="size" id="size-label">Size</label>
        <select id="size">
          <option>256x256</option>
          <option>512x512</option>
          <option>768x768</option>
          <option>1024x1024</option>
          <option>1024x768</option>
          <option>768x1024</option>
        </select>
      </div>
      <div class="field">
        <label for="steps">Steps</label>
        <input id="steps" type="number" min="1" max="256" value="16" inputmode="numeric">
      </div>
      <div class="field" id="image-opts">
        <label for="guidance">Guidance</label>
        <input id="guidance" type="number" min="0" max="50" step="0.5" placeholder="default" inputmode="decimal">
      </div>
      <div class="field" id="blend-opts" hidden>
        <label for="keep-photo"><input id="keep-photo" type="checkbox" checked> Keep my photo outside the mask</label>
        <small>Off: the model's raw decode of the whole image</small>
      </div>
      <div class="field" id="cache-opts">
        <label for="ml-cache"><input id="ml-cache" type="checkbox"> ML-Cache</label>
        <small>Faster on a GPU; text-to-image and inpaint</small>
      </div>
      <div class="field" id="text-opts" hidden>
        <label for="max-tokens">Answer tokens</label>
        <input id="max-tokens" type="number" min="1" max="2048" value="64" inputmode="numeric">
      </div>
      <div class="field">
        <label for="seed">Seed</label>
        <input id="seed" type="number" min="0" placeholder="random" inputmode="numeric">
      </div>
    </div>

    <div class="row actions">
      <button type="submit" id="run" class="primary">Generate</button>
      <button type="button" id="cancel" disabled>Cancel</button>
    </div>
  </form>

  <section class="output" aria-labelledby="output-title">
    <h2 id="output-title">Result</h2>
    <p id="status" role="status" aria-live="polite"></p>
    <div class="row">
      <label for="progress" class="visually-hidden">Progress</label>
      <progress id="progress" max="1" value="0"></progress>
      <span id="progress-text" aria-hidden="true"></span>
    </div>
    <div id="error" role="alert" hidden></div>
    <figure id="result" hidden>
      <img id="result-img" alt="">
      <figcaption><span id="result-meta"></span> <a id="download" href="#" download hidden>Download</a></figcaption>
    </figure>
    <p id="answer" hidden></p>
  </section>
</main>
</body>
</html>
`;
