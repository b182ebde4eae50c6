// Makes sure the generated dev models exist before any Node test runs (they are never committed).
export default async function setup(): Promise<void> {
  try {
    const mod = await import("../../gpu-backend/src/cli/build-dev-models");
    await mod.ensureDevModels();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND") return; // builder not written yet
    throw err;
  }
}
