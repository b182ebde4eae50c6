// A plan: the limits every request of a key runs under (rate, burst, concurrency, monthly quota, largest
// image, most steps, longest chat answer). Stored in D1 (keystore.ts); a leaf so request typing can name it without D1 code.
export interface Plan {
  id: string;
  name: string;
  rpm: number;
  burst: number;
  concurrency: number;
  monthly_units: number;
  max_pixels: number;
  max_steps: number;
  /** chat: the largest answer token budget (max_tokens) */
  max_answer_tokens: number;
}
