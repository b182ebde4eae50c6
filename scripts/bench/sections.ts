// Every benchmark section, in the order of the benchmark issue's items (the runner's table of contents).
import { admission } from "./admission";
import { edgeOverhead } from "./edge-overhead";
import { endToEnd } from "./end-to-end";
import { gpuProjection } from "./gpu-projection";
import { memory } from "./memory";
import { orchestratorOverhead } from "./orchestrator-overhead";
import type { BenchSection } from "./section";
import { throughput } from "./throughput";
import { wire } from "./wire";

export const SECTIONS: readonly BenchSection[] = [orchestratorOverhead, wire, admission, throughput, edgeOverhead, memory, endToEnd, gpuProjection];
