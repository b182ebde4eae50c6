// Public surface of the Triton client (see docs/triton.md).
export {
  TritonClient,
  TritonStream,
  InferResult,
  buildInferRequest,
  decodeInferResponse,
  encodeParameters,
  type CallOptions,
  type Duration,
  type InferParameters,
  type InferRequest,
  type ModelIndexEntry,
  type ModelMetadata,
  type ModelStatistics,
  type NamedInputTensor,
  type ParameterValue,
  type ResponseParameters,
  type ServerMetadata,
  type StreamOptions,
  type TensorMetadata,
  type TritonClientOptions,
} from "./client";
export {
  DATATYPES,
  ELEMENT_SIZE,
  configTypeOf,
  datatypeOfConfig,
  elementCount,
  isDataType,
  type AnyTensor,
  type DataType,
  type InputDataMap,
  type InputTensor,
  type InputTensorOf,
  type Tensor,
  type TensorDataMap,
} from "./datatypes";
export { bytesToStrings, decodeTensorData, deserializeBytes, encodeTensorData, serializeBytes, toFloat32 } from "./codec";
export { bf16ToFloat32, float32ToBf16, float32ToFp16, fp16ToFloat32 } from "../lib/numeric";
export { Status, TritonError, codeForMessage, isTritonError, statusName, toTritonError } from "./errors";
export type { ModelConfig, ModelInput, ModelOutput } from "./model-config";
export { TRITON_MAX_MESSAGE_BYTES } from "./proto";
