/** The server's own version (package.json, read once): Ollama's `/api/version`, LM Studio's `runtime.version`. */
import { readFileSync } from 'node:fs';

export const SERVER_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
