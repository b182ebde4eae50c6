// End to end: the playground page served by the edge, in headless Chromium (Debian's, via playwright-core),
// against the real stack. Text-to-image with the live progress bar, previews, the result and its download;
// inpainting with the mask brush (the mask sent is checked pixel by pixel); understanding; API errors shown
// as the API gives them; and no CSP violation or script error anywhere.
// Screenshots: E2E_SCREENSHOTS=/some/dir keeps them there; otherwise they go to a temp dir that is removed.
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import sharp from "sharp";
import { logsOnFailure, startTestStack, type TestStack } from "./support/stack";
import { launchChromium, type Browser } from "./support/browser";

// page.evaluate / addInitScript callbacks run in the browser. The Node tsconfig has no DOM lib, so the few
// browser globals they use are declared (loosely, for this module only).
declare const window: any;
declare const document: any;
declare const localStorage: any;
declare const MutationObserver: any;
declare const requestAnimationFrame: (cb: () => void) => number;

let stack: TestStack | undefined;
let browser: Browser | undefined;
let page: Page;
let shots: string;
const keepShots = !!process.env.E2E_SCREENSHOTS;
const problems: string[] = []; // CSP violations, script errors

interface SentPart {
  name: string;
  value?: string;
  type?: string;
  bytes?: number[];
}
interface Sent {
  url: string;
  parts?: SentPart[];
  json?: string;
}

beforeAll(async () => {
  shots = keepShots ? process.env.E2E_SCREENSHOTS! : await mkdtemp(join(tmpdir(), "dimoo-shots-"));
  await mkdir(shots, { recursive: true });
  const [s, b] = await Promise.allSettled([startTestStack(), launchChromium()]);
  if (s.status === "fulfilled") stack = s.value;
  if (b.status === "fulfilled") browser = b.value;
  if (s.status === "rejected") throw s.reason;
  if (b.status === "rejected") throw b.reason;
  page = await browser!.context.newPage();
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    // a 4xx answer is logged by Chromium as "Failed to load resource"; that one is expected (error test)
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`);
  });
  // Test instrumentation (not part of the page): record what the page sends, to check the mask it painted.
  await page.addInitScript(() => {
    const w = window as unknown as { __sent: unknown[] };
    w.__sent = [];
    const original = window.fetch.bind(window);
    window.fetch = async (input: unknown, init?: RequestInit) => {
      if (init?.body instanceof FormData) {
        const parts: unknown[] = [];
        for (const [name, v] of init.body.entries()) {
          parts.push(typeof v === "string" ? { name, value: v } : { name, type: v.type, bytes: Array.from(new Uint8Array(await v.arrayBuffer())) });
        }
        w.__sent.push({ url: String(input), parts });
      } else if (typeof init?.body === "string") w.__sent.push({ url: String(input), json: init.body });
      return original(input, init);
    };
  });
  await page.goto(`${stack!.edgeUrl}/`);
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  if (keepShots) process.stdout.write(`playground screenshots in ${shots}\n`);
  else if (shots) await rm(shots, { recursive: true, force: true });
});
afterEach((ctx) => logsOnFailure(stack, ctx));

const sent = () => page.evaluate(() => (window as unknown as { __sent: Sent[] }).__sent);

/** Records every value the progress bar is given (MutationObserver records, in order) and the values it
 *  showed at animation frames while running (what a user sees move), and every image the result shows. */
async function watchOutput(): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __progress: number[]; __frames: number[]; __images: { preview: boolean }[]; __observers?: { disconnect(): void }[] };
    for (const o of w.__observers ?? []) o.disconnect(); // from an earlier test on this page
    const progress: number[] = (w.__progress = []);
    const frames: number[] = (w.__frames = []);
    const images: { preview: boolean }[] = (w.__images = []);
    const bar = document.getElementById("progress");
    const values = new MutationObserver((records: { oldValue: string | null }[]) => {
      // records are batched: each one's new value is the next one's old value, the last one's is current
      records.forEach((_r: unknown, i: number) => {
        const v = i + 1 < records.length ? records[i + 1].oldValue : bar.getAttribute("value");
        if (v !== null && Number(v) > 0) progress.push(Number(v));
      });
    });
    values.observe(bar, { attributes: true, attributeFilter: ["value"], attributeOldValue: true });
    const sample = () => {
      if (bar.hasAttribute("value") && bar.value > 0 && frames.at(-1) !== bar.value) frames.push(bar.value);
      if (!images.some((i) => !i.preview)) requestAnimationFrame(sample);
    };
    requestAnimationFrame(sample);
    const img = document.getElementById("result-img");
    const srcs = new MutationObserver(() => images.push({ preview: img.classList.contains("preview") }));
    srcs.observe(img, { attributes: true, attributeFilter: ["src"] });
    w.__observers = [values, srcs];
  });
}
const watched = () =>
  page.evaluate(() => {
    const w = window as unknown as { __progress: number[]; __frames: number[]; __images: { preview: boolean }[] };
    return { progress: w.__progress, frames: w.__frames, images: w.__images };
  });

/** Waits for the run to end and expects success (the error box's text is the failure message otherwise). */
async function succeeded(): Promise<void> {
  await finished();
  const error = (await page.locator("#error").isVisible()) ? await page.locator("#error").textContent() : null;
  expect(error).toBeNull();
  expect(await page.locator("#status").textContent()).toMatch(/^Done in \d+\.\d s\.$/);
}

async function gradientPng(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set([(x * 255) / width, (y * 255) / height, 160], (y * width + x) * 3);
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

async function finished(): Promise<void> {
  await page.waitForFunction(() => /^(Done|Failed|Cancelled)/.test(document.getElementById("status")!.textContent ?? ""), null, { timeout: 90_000 });
}

describe("the playground in headless Chromium", () => {
  it("is served at / under a strict CSP with its script and stylesheet as separate files", async () => {
    const res = await page.reload();
    expect(res!.status()).toBe(200);
    const h = res!.headers();
    expect(h["content-type"]).toMatch(/^text\/html/);
    expect(h["content-security-policy"]).toContain("script-src 'self'");
    expect(h["content-security-policy"]).toContain("default-src 'none'");
    expect(h["content-security-policy"]).not.toContain("unsafe-inline");
    expect(h["x-content-type-options"]).toBe("nosniff");
    await expect(page.title()).resolves.toBe("Lumina-DiMOO playground");
    // every control has a label
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea, progress")].filter((e) => !e.labels?.length).map((e) => e.id),
    );
    expect(unlabelled).toEqual([]);
    expect(await page.locator("#run").textContent()).toBe("Generate");
  });

  it("shows an API error as the API gives it (bad key: 401 invalid_api_key, with the request id)", async () => {
    await page.fill("#key", "dmo_live_1111111111111111111111111111111111111111");
    await page.click("#run");
    await page.waitForSelector("#error:not([hidden])");
    const text = await page.locator("#error").textContent();
    expect(text).toContain("Error 401");
    expect(text).toContain("invalid_api_key");
    expect(text).toContain("authentication_error");
    expect(text).toMatch(/request req_\w+/);
    await finished();
  });

  it("generates a 256x256 image: the progress bar moves step by step, previews, then the result and its download", async () => {
    await page.fill("#key", stack!.apiKey);
    await page.selectOption("#size", "256x256");
    await page.fill("#steps", "8");
    await page.fill("#seed", "11");
    await page.fill("#prompt", "a red fox in the snow, watercolor");
    await watchOutput();
    await page.click("#run");
    await succeeded();
    expect(await page.locator("#download").isVisible()).toBe(true);

    const { progress, frames, images } = await watched();
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8]); // every step, in order
    expect(frames.filter((v) => v < 8).length).toBeGreaterThanOrEqual(2); // and it was seen moving before the end
    expect(await page.evaluate(() => [(document.getElementById("progress")).value, (document.getElementById("progress")).max])).toEqual([8, 8]);
    expect(images.some((i) => i.preview)).toBe(true); // at least one streamed preview…
    expect(images.at(-1)).toEqual({ preview: false }); // …then the final image
    const size = await page.evaluate(() => {
      const img = document.getElementById("result-img");
      return [img.naturalWidth, img.naturalHeight, img.complete];
    });
    expect(size).toEqual([256, 256, true]);
    expect(await page.locator("#result-meta").textContent()).toContain("seed 11");
    expect(await page.evaluate(() => localStorage.getItem("dimoo.playground.apiKey"))).toBe(stack!.apiKey);

    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    expect(download.suggestedFilename()).toBe("dimoo-11.png");
    const file = join(shots, download.suggestedFilename());
    await download.saveAs(file);
    const meta = await sharp(file).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", 256, 256]);
    await page.screenshot({ path: join(shots, "playground-generate.png"), fullPage: true });
  });

  it("inpaints: the brush paints a mask that is sent as a PNG whose painted pixels are transparent", async () => {
    await page.fill("#key", stack!.apiKey);
    await page.check("input[name=task][value=inpaint]");
    expect(await page.locator("#run").textContent()).toBe("Inpaint");
    await page.setInputFiles("#image", { name: "photo.png", mimeType: "image/png", buffer: await gradientPng(320, 240) });
    await page.waitForFunction(() => document.getElementById("image-size")!.textContent === "Sent as 256\u00d7192 px.");
    const box = (await page.locator("#mask").boundingBox())!;
    expect(box).toEqual(await page.locator("#photo").boundingBox()); // the mask lies exactly over the image
    await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 8 });
    await page.mouse.up();
    await page.fill("#steps", "4");
    const before = (await sent()).length;
    await watchOutput();
    await page.click("#run");
    await finished();

    const req = (await sent()).slice(before).find((s) => s.url.endsWith("/v1/images/edits"))!;
    expect(req).toBeDefined();
    const field = (n: string) => req.parts!.find((p) => p.name === n);
    expect(field("task")?.value).toBe("inpaint");
    expect(field("stream")?.value).toBe("true");
    expect(await page.locator("#keep-photo").isChecked()).toBe(true);
    expect(field("raw_decode")).toBeUndefined(); // the default: blended into the photo
    const image = await sharp(Buffer.from(field("image")!.bytes!)).metadata();
    expect([image.width, image.height]).toEqual([256, 192]);
    const mask = sharp(Buffer.from(field("mask")!.bytes!));
    expect(field("mask")!.type).toBe("image/png");
    const { data, info } = await mask.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([256, 192]);
    const alphaAt = (x: number, y: number) => data[(y * info.width + x) * info.channels + 3];
    await sharp(Buffer.from(field("mask")!.bytes!)).toFile(join(shots, "sent-mask.png"));
    expect(alphaAt(Math.round(256 * 0.35), 96)).toBe(0); // under the stroke: regenerate
    expect(alphaAt(240, 10)).toBe(255); // elsewhere: keep
    let transparent = 0;
    for (let i = 3; i < data.length; i += info.channels) if (data[i] === 0) transparent++;
    expect(transparent / (info.width * info.height)).toBeGreaterThan(0.02);
    expect(transparent / (info.width * info.height)).toBeLessThan(0.5);

    await succeeded();
    expect(await page.locator("#download").isVisible()).toBe(true);
    expect((await watched()).progress).toEqual([1, 2, 3, 4]);
    const size = await page.evaluate(() => [(document.getElementById("result-img")).naturalWidth, (document.getElementById("result-img")).naturalHeight]);
    expect(size).toEqual([256, 192]);
    await page.screenshot({ path: join(shots, "playground-inpaint.png"), fullPage: true });

    // Unticking "Keep my photo" asks for the raw decode.
    await page.uncheck("#keep-photo");
    const again = (await sent()).length;
    await page.click("#run");
    await succeeded();
    const raw = (await sent()).slice(again).find((s) => s.url.endsWith("/v1/images/edits"))!;
    expect(raw.parts!.find((p) => p.name === "raw_decode")?.value).toBe("true");
    await page.check("#keep-photo");
  });

  it("edits: sends the uploaded image with task edit and its kind, and shows the result", async () => {
    await page.fill("#key", stack!.apiKey);
    await page.check("input[name=task][value=edit]");
    expect(await page.locator("#run").textContent()).toBe("Edit");
    expect(await page.locator("#mask").isVisible()).toBe(false);
    await page.setInputFiles("#image", { name: "photo.png", mimeType: "image/png", buffer: await gradientPng(160, 200) });
    await page.waitForFunction(() => document.getElementById("image-size")!.textContent === "Sent as 160\u00d7192 px.");
    await page.selectOption("#edit-type", "edit_background");
    await page.fill("#prompt", "a beach at sunset");
    await page.fill("#steps", "3");
    const before = (await sent()).length;
    await page.click("#run");
    await succeeded();
    const req = (await sent()).slice(before).find((s) => s.url.endsWith("/v1/images/edits"))!;
    expect(req.parts!.find((p) => p.name === "task")?.value).toBe("edit");
    expect(req.parts!.find((p) => p.name === "edit_type")?.value).toBe("edit_background");
    expect(req.parts!.some((p) => p.name === "mask")).toBe(false);
    const size = await page.evaluate(() => [(document.getElementById("result-img")).naturalWidth, (document.getElementById("result-img")).naturalHeight]);
    // the edit task works at the model's own resolution class (not necessarily the input's size): same shape
    expect(size[0]).toBeGreaterThan(0);
    expect(Math.abs(size[0] / size[1] - 160 / 192)).toBeLessThan(0.05);
  });

  it("understands: asks a question about the uploaded image and shows the streamed answer", async () => {
    await page.fill("#key", stack!.apiKey);
    await page.check("input[name=task][value=understand]");
    if (!(await page.locator("#photo").isVisible())) await page.setInputFiles("#image", { name: "photo.png", mimeType: "image/png", buffer: await gradientPng(320, 240) });
    expect(await page.locator("#run").textContent()).toBe("Ask");
    await page.fill("#prompt", "What is in the picture?");
    await page.fill("#steps", "2");
    await page.fill("#max-tokens", "8");
    const before = (await sent()).length;
    await page.click("#run");
    await succeeded();
    expect(await page.locator("#answer").isVisible()).toBe(true);
    expect((await page.locator("#answer").textContent())!.length).toBeGreaterThan(0); // the dev model's answer may be empty text: then a note says so
    const req = (await sent()).slice(before).find((s) => s.url.endsWith("/v1/chat/completions"))!;
    const body = JSON.parse(req.json!) as { stream: boolean; max_tokens: number; steps: number; messages: { content: { type: string; image_url?: { url: string } }[] }[] };
    expect(body).toMatchObject({ stream: true, max_tokens: 8, steps: 2 });
    expect(body.messages[0].content[1].image_url!.url).toMatch(/^data:image\/png;base64,/);
  });

  it("cancels a running generation: the page resets and the orchestrator stops the request", async () => {
    const cancelled = async () => {
      const text = await (await fetch(stack!.metricsUrl!)).text();
      return Number(/^dimoo_orchestrator_requests_total\{code="CANCELLED",method="Generate"\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const before = await cancelled();
    await page.fill("#key", stack!.apiKey);
    await page.check("input[name=task][value=generate]");
    await page.selectOption("#size", "512x512");
    await page.fill("#steps", "200");
    await page.click("#run");
    await page.waitForFunction(() => Number(document.getElementById("progress").getAttribute("value")) >= 1, null, { timeout: 30_000 });
    await page.click("#cancel");
    await finished();
    expect(await page.locator("#status").textContent()).toBe("Cancelled.");
    expect(await page.locator("#run").isEnabled()).toBe(true);
    expect(await page.locator("#cancel").isDisabled()).toBe(true);
    const deadline = Date.now() + 10_000;
    while ((await cancelled()) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await cancelled()).toBe(before + 1); // the disconnect went through the edge to the orchestrator
  });

  it("…and releases the cancelled request's reservation (no slot or units stay taken)", async () => {
    const quota = async () => {
      const res = await fetch(`${stack!.edgeUrl}/v1/usage`, { headers: { authorization: `Bearer ${stack!.apiKey}` } });
      return ((await res.json()) as { quota: { in_flight: number; reserved_units: number } }).quota;
    };
    const deadline = Date.now() + 5_000;
    while ((await quota()).in_flight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await quota()).toMatchObject({ in_flight: 0, reserved_units: 0 });
  });

  it("keeps the key in this browser only: filled again after a reload, gone after Forget", async () => {
    await page.reload();
    expect(await page.inputValue("#key")).toBe(stack!.apiKey);
    await page.click("#forget");
    expect(await page.inputValue("#key")).toBe("");
    expect(await page.evaluate(() => localStorage.getItem("dimoo.playground.apiKey"))).toBeNull();
    await page.reload();
    expect(await page.inputValue("#key")).toBe("");
  });

  it("caused no CSP violation and no script error", () => {
    expect(problems).toEqual([]);
  });
});
