/**
 * `inferctl create NAME -f Modelfile`: a Modelfile read and parsed here (runtime/models/
 * modelfile.ts), sent as one `POST /api/create`, so the server's checks (base served, parameters
 * it runs, fields it refuses) answer with their own messages. `FROM` a file is refused here: the
 * server builds on served models, so the file is loaded first.
 */
import { readFile } from 'node:fs/promises';
import { ModelfileError, parseModelfile } from '../runtime/models/modelfile.js';
import { CliError, EXIT, requestJson, type Connection } from './client.js';
import type { Output } from './generate.js';

export async function runCreate(c: Connection, name: string, o: { file: string; json: boolean }, io: Output): Promise<void> {
  let text: string;
  try {
    text = await readFile(o.file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${o.file}: ${(err as Error).message}`, EXIT.usage, 'pass the Modelfile with -f PATH');
  }
  let fields;
  try {
    fields = parseModelfile(text);
  } catch (err) {
    if (err instanceof ModelfileError) throw new CliError(`${o.file}: ${err.message}`, EXIT.usage);
    throw err;
  }
  const from = fields.from!;
  if (/^(\.{0,2}\/|~\/)|\.gguf$/i.test(from)) {
    throw new CliError(
      `FROM ${from}: a created model builds on a served model, not a file`,
      EXIT.usage,
      `serve the file first (inferctl admin models --load ${from} --id NAME), then write FROM NAME`,
    );
  }
  const { body } = await requestJson(c, 'POST', '/api/create', { model: name, ...fields, stream: false });
  io.out(o.json ? `${JSON.stringify({ model: name, from, ...body })}\n` : `created ${name} from ${from}\n`);
}
