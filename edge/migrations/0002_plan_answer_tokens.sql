-- Chat answers are bounded by the plan like images: the answer's token budget (max_tokens) per request.
ALTER TABLE plans ADD COLUMN max_answer_tokens INTEGER NOT NULL DEFAULT 256;
UPDATE plans SET max_answer_tokens = 1024 WHERE id = 'pro';
UPDATE plans SET max_answer_tokens = 2048 WHERE id = 'dev';
