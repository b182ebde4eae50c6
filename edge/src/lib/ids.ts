// Identifiers: prefixed random ids for jobs, keys and accounts; idempotent job ids derived from a client key.
import { randomBase58 } from "./encoding";
import { sha256Hex } from "./crypto";

export const newId = (prefix: "job" | "key" | "acct" | "req"): string => `${prefix}_${randomBase58(20)}`;

/** Same account + same Idempotency-Key => same job id, so the ledger row itself is the idempotency record. */
export async function idempotentJobId(accountId: string, idempotencyKey: string): Promise<string> {
  return `job_${(await sha256Hex(`${accountId}\n${idempotencyKey}`)).slice(0, 32)}`;
}
