// inference.ModelConfig as a plain object (proto-loader / protobufjs toObject with keepCase, enums as
// strings, 64-bit integers as numbers, defaults filled in). Both the client's ModelConfig RPC and the
// embedded backend's config.pbtxt parser produce this shape. Only the commonly used fields are spelled out.

export type ConfigDataType =
  | "TYPE_INVALID"
  | "TYPE_BOOL"
  | "TYPE_UINT8"
  | "TYPE_UINT16"
  | "TYPE_UINT32"
  | "TYPE_UINT64"
  | "TYPE_INT8"
  | "TYPE_INT16"
  | "TYPE_INT32"
  | "TYPE_INT64"
  | "TYPE_FP16"
  | "TYPE_FP32"
  | "TYPE_FP64"
  | "TYPE_STRING"
  | "TYPE_BF16";

export interface ModelTensorReshape {
  shape: number[];
}

export interface ModelInput {
  name: string;
  data_type: ConfigDataType;
  format: string;
  dims: number[];
  reshape: ModelTensorReshape | null;
  is_shape_tensor: boolean;
  allow_ragged_batch: boolean;
  optional: boolean;
  is_non_linear_format_io: boolean;
}

export interface ModelOutput {
  name: string;
  data_type: ConfigDataType;
  dims: number[];
  reshape: ModelTensorReshape | null;
  label_filename: string;
  is_shape_tensor: boolean;
  is_non_linear_format_io: boolean;
}

export interface ModelVersionPolicy {
  latest?: { num_versions: number } | null;
  all?: Record<string, never> | null;
  specific?: { versions: number[] } | null;
  policy_choice?: "latest" | "all" | "specific";
}

export interface ModelInstanceGroup {
  name: string;
  kind: "KIND_AUTO" | "KIND_GPU" | "KIND_CPU" | "KIND_MODEL";
  count: number;
  gpus: number[];
  profile: string[];
  passive: boolean;
  host_policy: string;
  [field: string]: unknown;
}

export interface ModelQueuePolicy {
  timeout_action: "REJECT" | "DELAY";
  default_timeout_microseconds: number;
  allow_timeout_override: boolean;
  max_queue_size: number;
}

export interface ModelDynamicBatching {
  preferred_batch_size: number[];
  max_queue_delay_microseconds: number;
  preserve_ordering: boolean;
  priority_levels: number;
  default_priority_level: number;
  default_queue_policy: ModelQueuePolicy | null;
  priority_queue_policy: Record<string, ModelQueuePolicy>;
}

export type ControlKind = "CONTROL_SEQUENCE_START" | "CONTROL_SEQUENCE_READY" | "CONTROL_SEQUENCE_END" | "CONTROL_SEQUENCE_CORRID";

export interface SequenceControl {
  kind: ControlKind;
  int32_false_true: number[];
  fp32_false_true: number[];
  bool_false_true: boolean[];
  data_type: ConfigDataType;
}

export interface SequenceControlInput {
  name: string;
  control: SequenceControl[];
}

export interface SequenceInitialState {
  data_type: ConfigDataType;
  dims: number[];
  zero_data?: boolean;
  data_file?: string;
  state_data?: "zero_data" | "data_file";
  name: string;
}

export interface SequenceState {
  input_name: string;
  output_name: string;
  data_type: ConfigDataType;
  dims: number[];
  initial_state: SequenceInitialState[];
  use_same_buffer_for_input_output: boolean;
  use_growable_memory: boolean;
}

export interface ModelSequenceBatching {
  direct?: { max_queue_delay_microseconds: number; minimum_slot_utilization: number } | null;
  oldest?: { max_candidate_sequences: number; preferred_batch_size: number[]; max_queue_delay_microseconds: number; preserve_ordering: boolean } | null;
  strategy_choice?: "direct" | "oldest";
  max_sequence_idle_microseconds: number;
  control_input: SequenceControlInput[];
  state: SequenceState[];
  iterative_sequence: boolean;
}

export interface ModelConfig {
  name: string;
  platform: string;
  backend: string;
  runtime: string;
  version_policy: ModelVersionPolicy | null;
  max_batch_size: number;
  input: ModelInput[];
  output: ModelOutput[];
  optimization: Record<string, unknown> | null;
  dynamic_batching?: ModelDynamicBatching | null;
  sequence_batching?: ModelSequenceBatching | null;
  ensemble_scheduling?: Record<string, unknown> | null;
  scheduling_choice?: "dynamic_batching" | "sequence_batching" | "ensemble_scheduling";
  instance_group: ModelInstanceGroup[];
  default_model_filename: string;
  cc_model_filenames: Record<string, string>;
  metric_tags: Record<string, string>;
  parameters: Record<string, { string_value: string }>;
  model_warmup: Record<string, unknown>[];
  model_transaction_policy: { decoupled: boolean } | null;
  response_cache: { enable: boolean } | null;
  [field: string]: unknown;
}
