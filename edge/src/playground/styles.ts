// The playground's stylesheet, served as /playground/app.css.
export const PLAYGROUND_CSS = `:root {
  --bg: #f7f7f8; --fg: #1b1b1f; --muted: #5b5b66; --card: #fff; --line: #d4d4da;
  --accent: #3b5bdb; --accent-fg: #fff; --error-bg: #fff1f1; --error-line: #d33;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg);
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #141418; --fg: #ececf1; --muted: #a0a0ad; --card: #1e1e24; --line: #3a3a44;
          --accent: #7c94ff; --accent-fg: #0b0b10; --error-bg: #3a1618; --error-line: #ff6b6b; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 1.25rem; }
header h1 { margin: 0 0 .25rem; font-size: 1.5rem; }
header p { margin: 0 0 1rem; color: var(--muted); }
a { color: var(--accent); }
main { display: grid; gap: 1.25rem; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); align-items: start; }
@media (max-width: 800px) { main { grid-template-columns: minmax(0, 1fr); } }
form, .output { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 1rem; }
.output h2 { margin: 0 0 .5rem; font-size: 1.1rem; }
.field { display: flex; flex-direction: column; gap: .25rem; margin-bottom: .75rem; }
.field > label, legend { font-weight: 600; }
.row { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
.row > input[type="password"] { flex: 1; }
.hint { margin: 0; color: var(--muted); font-size: .85rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(110px, 1fr)); gap: 0 .75rem; }
fieldset.tasks { border: 1px solid var(--line); border-radius: 8px; margin: 0 0 .75rem; padding: .5rem .75rem; display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
input, select, textarea, button { font: inherit; color: inherit; }
input[type="password"], input[type="number"], select, textarea {
  background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: .4rem .5rem; width: 100%;
}
textarea { resize: vertical; }
button { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: .45rem .9rem; cursor: pointer; }
button.primary { background: var(--accent); color: var(--accent-fg); border-color: var(--accent); font-weight: 600; }
button:disabled { opacity: .55; cursor: not-allowed; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.actions { margin-top: .25rem; }
.canvas-wrap { position: relative; display: inline-block; align-self: flex-start; max-width: 100%; line-height: 0; }
.canvas-wrap canvas { max-width: 100%; height: auto; border-radius: 6px; }
#mask { position: absolute; inset: 0; width: 100%; height: 100%; opacity: .55; cursor: crosshair; touch-action: none; }
progress { flex: 1; height: 1rem; accent-color: var(--accent); }
#progress-text { color: var(--muted); font-variant-numeric: tabular-nums; min-width: 8ch; }
#status { margin: 0 0 .5rem; min-height: 1.45em; }
#error { background: var(--error-bg); border: 1px solid var(--error-line); border-radius: 8px; padding: .6rem .8rem; margin: .75rem 0; overflow-wrap: anywhere; }
#error p { margin: .25rem 0 0; font-size: .85rem; color: var(--muted); }
figure { margin: .75rem 0 0; }
figure img { display: block; max-width: 100%; height: auto; image-rendering: auto; border-radius: 6px; border: 1px solid var(--line); }
figure img.preview { image-rendering: pixelated; filter: saturate(.8); }
figcaption { margin-top: .4rem; color: var(--muted); font-size: .9rem; }
#answer { white-space: pre-wrap; background: var(--bg); border-radius: 6px; padding: .6rem .8rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; }
[hidden] { display: none !important; }
`;
