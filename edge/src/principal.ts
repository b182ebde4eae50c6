// The authenticated caller of a request: its key, the account usage is counted against, the key's mode and
// plan. Set by middleware/auth.ts as c.var.principal.
import type { KeyMode } from "./keys";
import type { Plan } from "./plan";

export interface Principal {
  keyId: string;
  accountId: string;
  mode: KeyMode;
  plan: Plan;
}
