// Generates the tiny dev models into model-repository/ (placeholder until the engine builder lands).
export async function ensureDevModels(): Promise<void> {}
