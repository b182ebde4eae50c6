// The DiMOO transformer engine: config, weights, ONNX graph and TypeScript reference.
export * from "./config";
export * from "./weights";
export * from "./graph";
export * from "./reference";
export * from "./call";
