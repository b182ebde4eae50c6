// Billing unit and usage events. The unit is the megapixel-step (MPS): megapixels of the image the model
// attends to x diffusion steps actually run. DiMOO is a discrete-diffusion transformer, so every step runs
// the whole sequence (image tokens at 16 px per side + text); compute is ~ pixels x steps, and both are
// chosen by the caller, so a price can be quoted before the call. Generation counts the output image (per
// image, n fan-outs add up), an edit its input images too; understanding counts the input images x answer
// steps. Amounts are kept as
// integer milli-MPS so sums never drift. Events leave as CloudEvents with the job id as `id`, so OpenMeter
// (dedupe on source+id) and Stripe meter events (identifier = id) drop redeliveries.
export const BILLING_UNIT = "megapixel_step" as const;
export const EVENT_SOURCE = "dimoo-edge";
export const EVENT_TYPE = "com.dimoo.usage.v1";

export type UsageTask = "image_generation" | "image_edit" | "chat_completion";

/**
 * milli-MPS for `images` outputs of width x height after `steps` steps each (rounded up); an edit also
 * attends to its input images, whose pixels (`inputPixels`, all inputs together) count the same way.
 */
export function imageUnitsMilli(width: number, height: number, steps: number, images = 1, inputPixels = 0): number {
  return Math.ceil(((width * height + inputPixels) * steps * images) / 1000);
}

/** milli-MPS for understanding: total input pixels x answer steps (rounded up, at least 1 milli-unit). */
export function understandUnitsMilli(inputPixels: number, steps: number): number {
  return Math.max(1, Math.ceil((inputPixels * steps) / 1000));
}

export const milliToUnits = (milli: number): number => Math.round(milli) / 1000;

export interface UsageData {
  account_id: string;
  key_id: string;
  task: UsageTask;
  unit: typeof BILLING_UNIT;
  units: number;
  units_milli: number;
  images: number;
  steps: number;
  request_id?: string;
}

/** CloudEvents 1.0 structured JSON. */
export interface UsageEvent {
  specversion: "1.0";
  id: string;
  source: typeof EVENT_SOURCE;
  type: typeof EVENT_TYPE;
  subject: string;
  time: string;
  datacontenttype: "application/json";
  data: UsageData;
}

export function usageEvent(jobId: string, data: Omit<UsageData, "unit" | "units">, time = new Date()): UsageEvent {
  return {
    specversion: "1.0",
    id: jobId,
    source: EVENT_SOURCE,
    type: EVENT_TYPE,
    subject: data.account_id,
    time: time.toISOString(),
    datacontenttype: "application/json",
    data: { ...data, unit: BILLING_UNIT, units: milliToUnits(data.units_milli) },
  };
}

export const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
export const monthOf = (ms: number): string => new Date(ms).toISOString().slice(0, 7);
