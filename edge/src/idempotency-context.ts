// What an Idempotency-Key request carries past the idempotency middleware: the key, the job id derived from
// (account, key), which is also the ledger row's id, and the canonical hash of the request it came with.
export interface IdempotencyContext {
  key: string;
  jobId: string;
  requestHash: string;
}
