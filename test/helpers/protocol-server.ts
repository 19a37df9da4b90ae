/**
 * One real server shared by the protocol suites (Ollama, Anthropic, OpenAI Responses, LM Studio,
 * tokenizer helpers): each start loads the model into every worker and costs seconds, and the
 * suites only read. Auth is on, with a key per scope the suites need. A root-level `after` stops
 * it once every file has run and checks it exits cleanly.
 */
import { expect } from 'chai';
import { startServer, type RunningServer } from './server.js';

export const KEYS = {
  all: 'sk-protocols-all-0123456789',
  read: 'sk-protocols-read-0123456789',
  generate: 'sk-protocols-generate-0123456789',
  admin: 'sk-protocols-admin-0123456789',
} as const;

let started: Promise<RunningServer> | undefined;

export function protocolServer(): Promise<RunningServer> {
  started ??= startServer({ INFERFLUX_API_KEYS: `${KEYS.all}:generate|read,${KEYS.read}:read,${KEYS.generate}:generate,${KEYS.admin}:admin` });
  return started;
}

after(async function () {
  this.timeout(60_000);
  if (!started) return;
  const server = await started;
  expect(await server.stop(), 'shared protocol server exit code after SIGTERM').to.equal(0);
});
