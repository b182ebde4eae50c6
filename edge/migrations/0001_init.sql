-- Edge schema: plans, API keys (SHA-256 digests only) and the usage events fed by the Queue consumer.
CREATE TABLE plans (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  rpm INTEGER NOT NULL,             -- requests per minute (GCRA emission rate)
  burst INTEGER NOT NULL,           -- GCRA burst (requests allowed back to back)
  concurrency INTEGER NOT NULL,     -- generations in flight per account
  monthly_units INTEGER NOT NULL,   -- megapixel-steps per UTC calendar month
  max_pixels INTEGER NOT NULL,      -- width x height of one output image
  max_steps INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  digest TEXT NOT NULL UNIQUE,      -- hex SHA-256 of the full key; the key itself is never stored
  start TEXT NOT NULL,              -- display prefix, e.g. dmo_live_Ab3x
  mode TEXT NOT NULL CHECK (mode IN ('live', 'test')),
  account_id TEXT NOT NULL,
  name TEXT,
  plan_id TEXT NOT NULL REFERENCES plans(id),
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX api_keys_account ON api_keys(account_id);

CREATE TABLE usage_events (
  id TEXT PRIMARY KEY,              -- CloudEvent id = job id: redelivered events are ignored
  account_id TEXT NOT NULL,
  key_id TEXT,
  task TEXT NOT NULL,
  units_milli INTEGER NOT NULL,
  day TEXT NOT NULL,
  time TEXT NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE INDEX usage_events_account_day ON usage_events(account_id, day);

INSERT INTO plans (id, name, rpm, burst, concurrency, monthly_units, max_pixels, max_steps, created_at, updated_at) VALUES
  ('free', 'Free', 10, 5, 1, 2000, 1048576, 64, 0, 0),
  ('pro', 'Pro', 120, 30, 4, 200000, 4194304, 128, 0, 0),
  ('dev', 'Local development', 600, 100, 8, 100000000, 4194304, 256, 0, 0);
