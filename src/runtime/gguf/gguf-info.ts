/**
 * What reading a GGUF file yields (metadata, tensor table) and the one error a bad file raises:
 * shared by the reader (reader.ts) and the llama.cpp rules checked on what it read (model-rules.ts).
 */

export type GgufProblem =
  | 'bad_magic'
  | 'unsupported_version'
  | 'truncated'
  | 'limit_exceeded'
  | 'bad_value'
  | 'duplicate'
  | 'bad_tensor'
  | 'misaligned'
  | 'out_of_range'
  | 'overlap'
  | 'missing_key';

export class GgufFormatError extends Error {
  readonly code = 'gguf_invalid';
  constructor(
    readonly reason: GgufProblem,
    message: string,
  ) {
    super(message);
    this.name = 'GgufFormatError';
  }
}

export type GgufScalar = number | bigint | boolean | string;
export type GgufMetaValue = GgufScalar | GgufScalar[];

export interface GgufTensorInfo {
  readonly name: string;
  /** ne0 first, as stored. */
  readonly dims: number[];
  readonly type: number;
  readonly typeName: string;
  /** Relative to the data section, as stored. */
  readonly offset: number;
  readonly absoluteOffset: number;
  readonly byteLength: number;
}

export interface GgufInfo {
  readonly version: number;
  readonly alignment: number;
  /** Key -> value, a null-prototype object so keys like `__proto__` stay inert data. */
  readonly metadata: Record<string, GgufMetaValue>;
  /** Key -> stored value type (GgufValueType); for arrays, the element type is in `arrayTypes`. */
  readonly metadataTypes: Record<string, number>;
  readonly arrayTypes: Record<string, number>;
  readonly tensors: GgufTensorInfo[];
  /** Absolute file offset where tensor data begins. */
  readonly dataOffset: number;
  readonly fileSize: number;
}

/** The tensor type holding most of the weights' bytes: what Ollama calls the quantization level. */
export function dominantType(info: GgufInfo): string {
  const bytes = new Map<string, number>();
  for (const t of info.tensors) bytes.set(t.typeName, (bytes.get(t.typeName) ?? 0) + t.byteLength);
  let best = 'unknown';
  let most = -1;
  for (const [name, n] of bytes) if (n > most) [best, most] = [name, n];
  return best;
}
