// Loads proto/triton with @grpc/proto-loader (keepCase, so fields keep Triton's snake_case names) and
// describes the decoded message shapes. The client decodes 64-bit integers as numbers (shapes, counters);
// the embedded server decodes them as strings so 64-bit sequence ids stay exact.

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import type { ModelConfig } from "./model-config";

/** Directory holding `triton/*.proto` (the import root). */
export const PROTO_ROOT = fileURLToPath(new URL("../../../proto/", import.meta.url));
export const GRPC_SERVICE_PROTO = join(PROTO_ROOT, "triton", "grpc_service.proto");
export const HEALTH_PROTO = join(PROTO_ROOT, "triton", "health.proto");
export const MODEL_CONFIG_PROTO = join(PROTO_ROOT, "triton", "model_config.proto");

/** Triton's message limit in both directions (INT32_MAX); grpc-js uses -1 for "unlimited". */
export const TRITON_MAX_MESSAGE_BYTES = 2147483647;

export type LongsAs = "number" | "string";

export interface TritonGrpcPackage {
  GRPCInferenceService: grpc.ServiceClientConstructor;
  Health: grpc.ServiceClientConstructor;
  definition: protoLoader.PackageDefinition;
}

const cache = new Map<LongsAs, TritonGrpcPackage>();

export function loadTritonGrpc(longs: LongsAs): TritonGrpcPackage {
  const hit = cache.get(longs);
  if (hit) return hit;
  const definition = protoLoader.loadSync([GRPC_SERVICE_PROTO, HEALTH_PROTO], {
    keepCase: true,
    longs: longs === "number" ? Number : String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [PROTO_ROOT],
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const pkg: TritonGrpcPackage = {
    GRPCInferenceService: loaded.inference.GRPCInferenceService,
    Health: loaded.grpc.health.v1.Health,
    definition,
  };
  cache.set(longs, pkg);
  return pkg;
}

// ---- decoded message shapes (proto-loader objects, snake_case) -------------------------------------------

/** 64-bit integers: numbers when encoding (or strings/bigints' string form); as decoded per LongsAs. */
export type Int64 = number | string;

export interface InferParameterMsg {
  bool_param?: boolean;
  int64_param?: Int64;
  string_param?: string;
  double_param?: number;
  uint64_param?: Int64;
  /** Set on decode (oneofs: true): which member is present. */
  parameter_choice?: "bool_param" | "int64_param" | "string_param" | "double_param" | "uint64_param";
}

export interface InferTensorContentsMsg {
  bool_contents: boolean[];
  int_contents: number[];
  int64_contents: Int64[];
  uint_contents: number[];
  uint64_contents: Int64[];
  fp32_contents: number[];
  fp64_contents: number[];
  bytes_contents: Uint8Array[];
}

export interface InferInputTensorMsg {
  name: string;
  datatype: string;
  shape: Int64[];
  parameters?: Record<string, InferParameterMsg>;
  contents?: Partial<InferTensorContentsMsg> | null;
}

export interface InferRequestedOutputTensorMsg {
  name: string;
  parameters?: Record<string, InferParameterMsg>;
}

export interface ModelInferRequestMsg {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, InferParameterMsg>;
  inputs: InferInputTensorMsg[];
  outputs: InferRequestedOutputTensorMsg[];
  raw_input_contents: Uint8Array[];
}

export interface InferOutputTensorMsg {
  name: string;
  datatype: string;
  shape: Int64[];
  parameters?: Record<string, InferParameterMsg>;
  contents?: Partial<InferTensorContentsMsg> | null;
}

export interface ModelInferResponseMsg {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, InferParameterMsg>;
  outputs: InferOutputTensorMsg[];
  raw_output_contents: Uint8Array[];
}

export interface ModelStreamInferResponseMsg {
  error_message: string;
  infer_response: ModelInferResponseMsg | null;
}

export interface TensorMetadataMsg {
  name: string;
  datatype: string;
  shape: Int64[];
}

export interface ModelMetadataResponseMsg {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadataMsg[];
  outputs: TensorMetadataMsg[];
}

export interface ServerMetadataResponseMsg {
  name: string;
  version: string;
  extensions: string[];
}

export interface StatisticDurationMsg {
  count: Int64;
  ns: Int64;
}

export interface InferStatisticsMsg {
  success: StatisticDurationMsg | null;
  fail: StatisticDurationMsg | null;
  queue: StatisticDurationMsg | null;
  compute_input: StatisticDurationMsg | null;
  compute_infer: StatisticDurationMsg | null;
  compute_output: StatisticDurationMsg | null;
  cache_hit: StatisticDurationMsg | null;
  cache_miss: StatisticDurationMsg | null;
}

export interface InferBatchStatisticsMsg {
  batch_size: Int64;
  compute_input: StatisticDurationMsg | null;
  compute_infer: StatisticDurationMsg | null;
  compute_output: StatisticDurationMsg | null;
}

export interface InferResponseStatisticsMsg {
  compute_infer: StatisticDurationMsg | null;
  compute_output: StatisticDurationMsg | null;
  success: StatisticDurationMsg | null;
  fail: StatisticDurationMsg | null;
  empty_response: StatisticDurationMsg | null;
  cancel: StatisticDurationMsg | null;
}

export interface MemoryUsageMsg {
  type: string;
  id: Int64;
  byte_size: Int64;
}

export interface ModelStatisticsMsg {
  name: string;
  version: string;
  last_inference: Int64;
  inference_count: Int64;
  execution_count: Int64;
  inference_stats: InferStatisticsMsg | null;
  batch_stats: InferBatchStatisticsMsg[];
  memory_usage: MemoryUsageMsg[];
  response_stats: Record<string, InferResponseStatisticsMsg>;
}

export interface ModelIndexMsg {
  name: string;
  version: string;
  state: string;
  reason: string;
}

export interface ModelRepositoryParameterMsg {
  bool_param?: boolean;
  int64_param?: Int64;
  string_param?: string;
  bytes_param?: Uint8Array;
  parameter_choice?: string;
}

export interface ModelConfigResponseMsg {
  config: ModelConfig | null;
}
