// Fair share of the host between tenants (the accounts the edge sends): weighted fair queueing of
// admissions. Each tenant has a virtual clock that one admission advances by 1 / weight; the next request
// admitted is the oldest ready one of the tenant whose clock is furthest behind, and a tenant that was idle
// starts from the current virtual time (it gets no credit for having been away). Together with the
// per-tenant caps in the step batcher, a flooding tenant takes its share of the slots and no more.

export interface TenantRequest {
  readonly tenant: string;
  /** Share relative to other tenants (> 0). */
  readonly weight: number;
  /** Arrival order, for ties. */
  readonly seq: number;
}

export class FairShare {
  private readonly finish = new Map<string, number>();
  private clock = 0;

  private startOf(tenant: string): number {
    return Math.max(this.finish.get(tenant) ?? 0, this.clock);
  }

  /** Of the candidates (at most one per tenant: its oldest), the one to admit next. */
  pick<R extends TenantRequest>(candidates: readonly R[]): R | undefined {
    let best: R | undefined;
    let bestStart = Infinity;
    for (const c of candidates) {
      const start = this.startOf(c.tenant);
      if (start < bestStart || (start === bestStart && best !== undefined && c.seq < best.seq)) {
        best = c;
        bestStart = start;
      }
    }
    return best;
  }

  /** Records an admission: the tenant's clock moves on by its cost in virtual time. */
  admitted(r: TenantRequest): void {
    const start = this.startOf(r.tenant);
    this.clock = start;
    this.finish.set(r.tenant, start + 1 / r.weight);
  }
}
