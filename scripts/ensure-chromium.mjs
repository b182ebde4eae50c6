// Runs before `npm test` (npm's pretest): the browser end-to-end test drives Debian's headless Chromium, so a
// fresh machine gets it here rather than failing the suite. Installs the `chromium` package with apt-get when
// it is missing and this user may (root, or passwordless sudo); otherwise says in one line what to install.
// CHROMIUM_PATH points at another browser binary and skips all of this.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const path = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
if (existsSync(path)) process.exit(0);
if (process.env.CHROMIUM_PATH) {
  console.error(`ensure-chromium: CHROMIUM_PATH=${path} does not exist; the browser test will fail.`);
  process.exit(0);
}

const has = (cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
const root = process.getuid?.() === 0;
const sudo = !root && has("sudo") && spawnSync("sudo", ["-n", "true"], { stdio: "ignore" }).status === 0;
if (!has("apt-get") || (!root && !sudo)) {
  console.error("ensure-chromium: /usr/bin/chromium is missing; install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH, or the browser test will fail.");
  process.exit(0);
}

console.error("ensure-chromium: installing Debian's chromium for the browser test (apt-get, once per machine)...");
const run = (args) => execFileSync(root ? args[0] : "sudo", root ? args.slice(1) : args, { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
try {
  run(["apt-get", "update", "-qq"]);
  run(["apt-get", "install", "-y", "-qq", "chromium"]);
} catch {
  console.error("ensure-chromium: apt-get could not install chromium; install it by hand (apt-get install chromium), or the browser test will fail.");
}
