// Data type names across the three vocabularies a generated config.pbtxt joins: the engine contract's
// (engine/contract.ts), Triton's model-config enum, and the ONNX element types of the graph it serves.

import type { ContractDType } from "../../engine/contract";

export const TRITON_TYPES: Record<ContractDType, string> = {
  INT64: "TYPE_INT64",
  INT32: "TYPE_INT32",
  FP32: "TYPE_FP32",
  UINT8: "TYPE_UINT8",
  BF16: "TYPE_BF16",
};

/** ONNX element type for each Triton data type (what the config check compares). */
export const ONNX_FOR_TRITON: Record<string, string> = {
  TYPE_INT64: "INT64",
  TYPE_INT32: "INT32",
  TYPE_FP32: "FLOAT",
  TYPE_FP16: "FLOAT16",
  TYPE_BF16: "BFLOAT16",
  TYPE_UINT8: "UINT8",
  TYPE_INT8: "INT8",
  TYPE_BOOL: "BOOL",
  TYPE_UINT64: "UINT64",
};

