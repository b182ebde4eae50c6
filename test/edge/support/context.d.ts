// Values the Node-side globalSetup provides to the workerd tests (vitest provide/inject).
import "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    orchestratorKind: "stand-in" | "real";
    orchestratorUrl: string;
    secondaryUrl: string;
    unhealthyUrl: string;
    /** a stand-in that answers Health only after the edge's health timeout (busy, not down) */
    slowHealthUrl: string;
    deadUrl: string;
    webhookUrl: string;
    orchestratorToken: string;
  }
}
