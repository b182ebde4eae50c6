// The authenticated caller of a request: its key, the account usage is counted against, the key's mode and
// plan. Set by middleware/auth.ts as c.var.principal. The account is also the tenant the orchestrator shares
// its slots between.
import type { KeyMode } from "./keys";
import type { Plan } from "./plan";

export interface Principal {
  keyId: string;
  accountId: string;
  mode: KeyMode;
  plan: Plan;
}

/** The account a request is for, as the orchestrator's fair share sees it. */
export interface Tenant {
  id: string;
  weight: number;
}

/**
 * Who pays, for the orchestrator's fair share: the account, weighted by its plan's concurrency (a plan that
 * may run more at once gets a larger share when the host is busy).
 */
export function tenantOf(who: Principal): Tenant {
  return { id: who.accountId, weight: Math.max(1, who.plan.concurrency) };
}
