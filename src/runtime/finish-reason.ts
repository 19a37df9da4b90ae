/**
 * Why a choice stopped, as the engine decides it: a stop sequence or end-of-generation token
 * (`stop`), the token limit or a full context (`length`), or a cancel (`cancelled`: the client
 * left or the server stopped the request). Protocols map these onto their own words.
 */
export type FinishReason = 'stop' | 'length' | 'cancelled';
