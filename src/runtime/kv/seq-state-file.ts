/**
 * Rewrites a llama.cpp sequence-state file (`llama_state_seq_save_file`) for a context with a
 * different number of KV streams.
 *
 * node-llama-cpp creates contexts with `kv_unified = false`, so a context has one KV stream per
 * sequence and the file stores that count: a file only loads into a context with the same
 * `sequences` count ("n_stream mismatch", notes §3). A one-sequence save has exactly one non-empty
 * stream block, and on load that block goes to the *target sequence's* stream whatever its index
 * in the file, so rewriting the stream count and the empty blocks around it is enough.
 *
 * Layout (all little-endian), read from the bundled llama.cpp (node-llama-cpp 3.22.1, tag v0.5.0):
 *
 * ```
 *  u32 magic 'ggsq' (0x67677371) | u32 version (3) | u32 n_tok | n_tok × u32 token
 *                                                   llama-context.cpp state_seq_save_file (3329)
 *  u32 n_stream                                     llama-kv-cache.cpp state_write (2063)
 *  per stream s < n_stream:
 *    u32 cell_count                                 (2113); 0 → nothing else for this stream
 *    meta, per cell:  i32 pos | u32 n_seq_id (1 for a one-sequence save)
 *                     [| 12 B ext {i32 x, i32 y, i32 tok} when M-RoPE or PLE: has_cell_ext()]
 *                     | n_seq_id × i32 seq_id       state_write_meta (2205)
 *    data:  u32 v_trans | u32 n_layer
 *           n_layer × (i32 k_type | u64 k_row_bytes | cell_count × k_row_bytes)
 *           v_trans = 0: per layer with a V tensor (i32 v_type | u64 v_row_bytes | cell_count × v_row_bytes)
 *           v_trans = 1: per layer with a V tensor (i32 v_type | u32 v_el_bytes | u32 n_embd_v
 *                                                    | n_embd_v × cell_count × v_el_bytes)
 *                                                   state_write_data (2238)
 * ```
 *
 * Load (state_read_sinfo, llama-kv-cache.cpp 2129): `n_stream` must equal the context's (2156),
 * empty blocks are skipped, and a non-empty block is restored into
 * `strm = seq_id == -1 ? s : seq_to_stream[seq_id]` (2177), where `seq_to_stream[s] = s` for
 * `n_stream > 1` and 0 otherwise (148-154). Each cell must have `n_seq_id == 1` (2364).
 *
 * Only plain KV-cache memories have this layout: an iSWA model writes two caches one after the
 * other and a recurrent model another format. Those fail the length checks below rather than
 * being guessed at: this output goes to native code, which must never see a malformed file.
 */

const MAGIC_GGSQ = 0x67677371;
const STATE_SEQ_VERSION = 3;
/** LLAMA_MAX_SEQ (llama-cparams.h): no context has more streams. */
export const MAX_STREAMS = 256;
/** sizeof(llama_kv_cell_ext): x, y, tok. */
const CELL_EXT_BYTES = 12;
/** Sanity bounds for the walk; far above any real model. */
const MAX_LAYERS = 4096;
const MAX_GGML_TYPE = 1024;

export class SeqStateFormatError extends Error {
  readonly code = 'IFX_KV_STATE_FORMAT';
  constructor(message: string) {
    super(`sequence state file: ${message}`);
    this.name = 'SeqStateFormatError';
  }
}

/** Where the parts of a one-sequence state file are (byte offsets into the file). */
export interface SeqStateLayout {
  readonly tokenCount: number;
  readonly streamCount: number;
  /** Index of the one non-empty stream block in the file. */
  readonly stream: number;
  readonly cellCount: number;
  /** The non-empty block: from its cell_count word to the end of its data. */
  readonly blockStart: number;
  readonly blockEnd: number;
}

/** Parse and validate a one-sequence state file; throws `SeqStateFormatError` on anything unexpected. */
export function parseSequenceState(bytes: Uint8Array): SeqStateLayout {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.byteLength;
  const u32 = (off: number, what: string): number => {
    if (off + 4 > len) throw new SeqStateFormatError(`truncated at ${what} (offset ${off}, file ${len} bytes)`);
    return dv.getUint32(off, true);
  };

  const magic = u32(0, 'magic');
  if (magic !== MAGIC_GGSQ) throw new SeqStateFormatError(`bad magic 0x${magic.toString(16)} (expected 'ggsq')`);
  const version = u32(4, 'version');
  if (version !== STATE_SEQ_VERSION) throw new SeqStateFormatError(`unsupported version ${version} (expected ${STATE_SEQ_VERSION})`);
  const tokenCount = u32(8, 'token count');
  if (12 + 4 * tokenCount + 4 > len) throw new SeqStateFormatError(`token count ${tokenCount} exceeds the file (${len} bytes)`);
  const streamsAt = 12 + 4 * tokenCount;
  const streamCount = u32(streamsAt, 'n_stream');
  if (streamCount < 1 || streamCount > MAX_STREAMS) throw new SeqStateFormatError(`n_stream ${streamCount} out of range [1, ${MAX_STREAMS}]`);

  // Leading empty streams, then the one non-empty block. Its end is fixed by the file length and
  // the count of (empty, 4-byte) streams after it; the walk below must land exactly there.
  let off = streamsAt + 4;
  let stream = 0;
  while (stream < streamCount && u32(off, `cell_count of stream ${stream}`) === 0) {
    off += 4;
    stream++;
  }
  if (stream === streamCount) throw new SeqStateFormatError('no stream holds any cells (empty sequence)');
  const blockStart = off;
  const cellCount = u32(off, `cell_count of stream ${stream}`);
  const trailing = streamCount - stream - 1;
  const blockEnd = len - 4 * trailing;
  if (blockEnd <= blockStart + 4) throw new SeqStateFormatError(`stream ${stream} block is truncated`);
  for (let s = 0; s < trailing; s++) {
    if (dv.getUint32(blockEnd + 4 * s, true) !== 0) {
      throw new SeqStateFormatError(`more than one non-empty stream block (a multi-sequence save?), or trailing bytes`);
    }
  }

  // Meta: the cell-ext block exists only for some models and the file does not say, so try both;
  // exactly one must walk to blockEnd.
  const fits = [false, true].filter((ext) => walkBlock(dv, blockStart + 4, blockEnd, cellCount, ext) === blockEnd);
  if (fits.length !== 1) {
    throw new SeqStateFormatError(
      fits.length === 0
        ? `stream ${stream} block (${cellCount} cells, ${blockEnd - blockStart} bytes) does not parse as one KV-cache stream (unsupported memory type?)`
        : `stream ${stream} block is ambiguous`,
    );
  }
  return { tokenCount, streamCount, stream, cellCount, blockStart, blockEnd };
}

/**
 * Walk one stream's meta + data from `off`. Returns the offset just past the data, or -1 if the
 * bytes do not form a valid block ending at or before `end`.
 */
function walkBlock(dv: DataView, off: number, end: number, cells: number, ext: boolean): number {
  const cellBytes = 4 + 4 + (ext ? CELL_EXT_BYTES : 0) + 4;
  if (cells * cellBytes > end - off) return -1;
  for (let i = 0; i < cells; i++, off += cellBytes) {
    if (dv.getInt32(off, true) < 0) return -1; // pos
    if (dv.getUint32(off + 4, true) !== 1) return -1; // n_seq_id: llama.cpp rejects anything else on load
  }
  if (off + 8 > end) return -1;
  const vTrans = dv.getUint32(off, true);
  const nLayer = dv.getUint32(off + 4, true);
  off += 8;
  if (vTrans > 1 || nLayer < 1 || nLayer > MAX_LAYERS) return -1;
  // Keys: one entry per layer.
  for (let l = 0; l < nLayer; l++) {
    off = skipRowTensor(dv, off, end, cells);
    if (off < 0) return -1;
  }
  // Values: one entry per layer that has a V tensor, so up to nLayer; the count is not stored.
  for (let l = 0; l < nLayer && off < end; l++) {
    if (vTrans === 0) {
      off = skipRowTensor(dv, off, end, cells);
      if (off < 0) return -1;
    } else {
      if (off + 12 > end) return -1;
      const type = dv.getInt32(off, true);
      const el = dv.getUint32(off + 4, true);
      const nEmbd = dv.getUint32(off + 8, true);
      off += 12;
      if (type < 0 || type > MAX_GGML_TYPE || el === 0 || nEmbd === 0) return -1;
      const size = BigInt(el) * BigInt(nEmbd) * BigInt(cells);
      if (size > BigInt(end - off)) return -1;
      off += Number(size);
    }
  }
  return off;
}

/**
 * Skips one per-layer tensor stored row by row (`type`, row size, then `cells` rows): the K tensors,
 * and the V tensors when not transposed. Returns the offset after it, or -1 when it is malformed.
 */
function skipRowTensor(dv: DataView, off: number, end: number, cells: number): number {
  if (off + 12 > end) return -1;
  const type = dv.getInt32(off, true);
  const row = dv.getBigUint64(off + 4, true);
  off += 12;
  if (type < 0 || type > MAX_GGML_TYPE || row === 0n) return -1;
  const size = row * BigInt(cells);
  if (size > BigInt(end - off)) return -1;
  return off + Number(size);
}

/**
 * Rewrite a one-sequence state file for a context with `targetStreams` sequences: the header and
 * tokens as they are, `n_stream = targetStreams`, the one non-empty block at stream `placeAt`
 * (default 0; where it sits does not matter when loading into a sequence id, see above) and a zero
 * cell count for every other stream. Throws `SeqStateFormatError` / `RangeError` instead of ever
 * returning a file llama.cpp could misread.
 */
export function retargetSequenceState(bytes: Uint8Array, targetStreams: number, placeAt = 0): Uint8Array {
  if (!Number.isInteger(targetStreams) || targetStreams < 1 || targetStreams > MAX_STREAMS) {
    throw new RangeError(`targetStreams must be an integer in [1, ${MAX_STREAMS}], got ${targetStreams}`);
  }
  if (!Number.isInteger(placeAt) || placeAt < 0 || placeAt >= targetStreams) {
    throw new RangeError(`placeAt must be an integer in [0, ${targetStreams}), got ${placeAt}`);
  }
  const layout = parseSequenceState(bytes);
  const headLen = 12 + 4 * layout.tokenCount;
  const blockLen = layout.blockEnd - layout.blockStart;
  const out = new Uint8Array(headLen + 4 + 4 * (targetStreams - 1) + blockLen);
  const dv = new DataView(out.buffer);
  out.set(bytes.subarray(0, headLen), 0);
  dv.setUint32(headLen, targetStreams, true);
  let off = headLen + 4;
  for (let s = 0; s < targetStreams; s++) {
    if (s === placeAt) {
      out.set(bytes.subarray(layout.blockStart, layout.blockEnd), off);
      off += blockLen;
    } else {
      off += 4; // zero cell_count (the array starts zeroed)
    }
  }
  return out;
}
