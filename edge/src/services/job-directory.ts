// Which account owns which async job, in D1. POST /v1/jobs registers a job before its Job object exists;
// reading, following or cancelling a job looks it up here first, so a job id that was never created (or
// belongs to another account) is a 404 without touching a Job Durable Object: addressing one creates its
// storage, for any id a caller cares to invent.
export async function registerJob(db: D1Database, jobId: string, accountId: string): Promise<void> {
  await db.prepare("INSERT OR IGNORE INTO jobs (id, account_id, created_at) VALUES (?, ?, ?)").bind(jobId, accountId, Date.now()).run();
}

export async function ownsJob(db: D1Database, jobId: string, accountId: string): Promise<boolean> {
  const row = await db.prepare("SELECT account_id FROM jobs WHERE id = ?").bind(jobId).first<{ account_id: string }>();
  return row?.account_id === accountId;
}
