/** Request schema for Ollama's `POST /api/show` (`name` is the older spelling of `model`). */
export interface ShowRequest {
  model?: string;
  name?: string;
  verbose?: boolean;
}

export const showSchema = {
  type: 'object',
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    name: { type: 'string', minLength: 1, maxLength: 256 },
    verbose: { type: 'boolean' },
  },
};
