// vitest globalSetup (runs in Node, outside workerd): starts the orchestrator the edge calls (the stand-in
// today, see ./orchestrator.ts), a second stand-in that reports not-ready, a dead address (for failover),
// and a webhook receiver; their URLs reach the Worker's bindings and the tests through provide/inject.
import type { TestProject } from "vitest/node";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startOrchestrator } from "./orchestrator";
import { startStandInOrchestrator } from "./standin-orchestrator";
import { startWebhookReceiver } from "./webhook-receiver";

export const ORCHESTRATOR_TOKEN = "test-orchestrator-token";

async function deadUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

export default async function setup(project: TestProject) {
  const primary = await startOrchestrator(ORCHESTRATOR_TOKEN);
  const secondary = await startStandInOrchestrator({ token: ORCHESTRATOR_TOKEN, name: "secondary" });
  const unhealthy = await startStandInOrchestrator({ token: ORCHESTRATOR_TOKEN, name: "unhealthy", mode: "unhealthy" });
  const slowHealth = await startStandInOrchestrator({ token: ORCHESTRATOR_TOKEN, name: "slow-health", mode: "slow-health" });
  const webhooks = await startWebhookReceiver();
  project.provide("orchestratorKind", primary.kind);
  project.provide("orchestratorUrl", primary.url);
  project.provide("secondaryUrl", secondary.url);
  project.provide("unhealthyUrl", unhealthy.url);
  project.provide("slowHealthUrl", slowHealth.url);
  project.provide("deadUrl", await deadUrl());
  project.provide("webhookUrl", webhooks.url);
  project.provide("orchestratorToken", ORCHESTRATOR_TOKEN);
  return async () => {
    await Promise.all([primary.close(), secondary.close(), unhealthy.close(), slowHealth.close(), webhooks.close()]);
  };
}
