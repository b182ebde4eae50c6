// The DiMOO transformer engines: config, weights, the stateless and the cached (ML-Cache) ONNX graphs,
// their model files, and the TypeScript references they are tested against.
export * from "./config";
export * from "./weights";
export * from "./blocks";
export * from "./graph";
export * from "./cached-graph";
export * from "./model-file";
export * from "./reference";
export * from "./call";
export * from "./cached-call";
export * from "./cached-reference";
