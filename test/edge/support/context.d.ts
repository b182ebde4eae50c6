// Values the Node-side globalSetup provides to the workerd tests (vitest provide/inject).
import "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    orchestratorKind: "stand-in" | "real";
    orchestratorUrl: string;
    secondaryUrl: string;
    unhealthyUrl: string;
    deadUrl: string;
    webhookUrl: string;
    orchestratorToken: string;
  }
}
