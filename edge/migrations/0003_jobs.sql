-- Which account owns which async job: a job id that was never created is a 404 read from here, without
-- touching its Job Durable Object (which would create storage for any id a caller invents).
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
