// Makes sure the generated dev models exist before any Node test runs (they are never committed).
import { ensureDevModels } from "../../gpu-backend/src/cli/build-dev-models";

export default async function setup(): Promise<void> {
  await ensureDevModels();
}
