// Starts the embedded Triton-compatible backend alone:
//   npm run start:backend -- --repository model-repository --port 8001 [--host 127.0.0.1]
// The backend has no auth, like Triton: it listens on loopback unless --host says otherwise.
//     [--model-config-name NAME] [--instance-cap N] [--ort-workers N] [--no-wait]
// Stops on SIGINT/SIGTERM.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { start } from "../embedded/server";

const { values } = parseArgs({
  options: {
    repository: { type: "string", default: "model-repository" },
    port: { type: "string", default: "8001" },
    host: { type: "string", default: "127.0.0.1" },
    "model-config-name": { type: "string" },
    "instance-cap": { type: "string" },
    "ort-workers": { type: "string" },
    "no-wait": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  console.log(
    "usage: npm run start:backend -- [--repository DIR] [--port 8001] [--host 127.0.0.1] [--model-config-name NAME] [--instance-cap N] [--ort-workers N] [--no-wait]",
  );
  process.exit(0);
}

const log = (line: string) => console.error(`${new Date().toISOString()} ${line}`);
const backend = await start({
  repository: resolve(values.repository as string),
  port: Number(values.port),
  host: values.host,
  configName: values["model-config-name"],
  instanceCap: values["instance-cap"] ? Number(values["instance-cap"]) : undefined,
  ortWorkers: values["ort-workers"] ? Number(values["ort-workers"]) : undefined,
  waitForModels: !values["no-wait"],
  log,
});
for (const m of backend.repository.models.values()) {
  if (m.error) log(`E ${m.name}: UNAVAILABLE: ${m.error}`);
  for (const v of m.versions.values()) log(`I ${m.name} version ${v.version}: ${v.state}${v.reason ? `: ${v.reason}` : ""}`);
}

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log(`I ${signal}: stopping`);
  await backend.close();
  process.exit(0);
};
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
