// Structured JSON logs, one object per line. Callers pass only what is safe to log: request ids, task,
// sizes, counts, timings, codes. Prompts, questions, images and tokens are never passed in; as a second
// line of defence, keys that look like secrets or user content are dropped here.

export type LogLevel = "debug" | "info" | "warn" | "error";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const FORBIDDEN = /^(prompt|question|text|token|authorization|secret|password|images?|mask|answer)$/i;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; default process.stdout. */
  write?: (line: string) => void;
  base?: Record<string, unknown>;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = ORDER[opts.level ?? "info"];
  const write = opts.write ?? ((line: string) => process.stdout.write(line + "\n"));
  const base = opts.base ?? {};
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const rec: Record<string, unknown> = { ts: new Date().toISOString(), level, msg };
    for (const src of [base, fields ?? {}]) {
      for (const [k, v] of Object.entries(src)) {
        if (FORBIDDEN.test(k) || v === undefined) continue;
        rec[k] = typeof v === "bigint" ? v.toString() : v;
      }
    }
    try {
      write(JSON.stringify(rec));
    } catch {
      // never throw from logging
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ ...opts, base: { ...base, ...fields } }),
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger({ write: () => {} });
