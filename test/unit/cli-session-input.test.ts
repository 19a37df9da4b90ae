/**
 * The pure parts of the CLI: multi-line input of the chat session, the server's flags (shared by
 * `node dist/main.js` and `inferctl serve`), and the metrics samples `inferctl status` reads.
 */
import { expect } from 'chai';
import { InputCollector } from '../../src/cli/chat-session.js';
import { samplesByModel } from '../../src/cli/inspect.js';
import { flagsToEnv, parseServerArgv } from '../../src/config/server-flags.js';

describe('chat session input', () => {
  it('a line is a message; a trailing backslash continues it', () => {
    const c = new InputCollector();
    expect(c.push('hello')).to.equal('hello');
    expect(c.push('first \\')).to.equal(null);
    expect(c.pending).to.equal(true);
    expect(c.push('second')).to.equal('first \nsecond');
    expect(c.pending).to.equal(false);
  });

  it('""" opens and closes a block, blank lines and backslashes included', () => {
    const c = new InputCollector();
    expect(c.push('"""')).to.equal(null);
    expect(c.push('def f():')).to.equal(null);
    expect(c.push('')).to.equal(null);
    expect(c.push('  return 1 \\')).to.equal(null);
    expect(c.push('"""')).to.equal('def f():\n\n  return 1 \\\n');
    expect(c.push('"""one line"""')).to.equal('one line');
    expect(c.push('"""start')).to.equal(null);
    expect(c.push('end"""')).to.equal('start\nend');
  });

  it('clear drops a half-typed message', () => {
    const c = new InputCollector();
    c.push('"""');
    c.push('abc');
    c.clear();
    expect(c.pending).to.equal(false);
    expect(c.push('x')).to.equal('x');
  });
});

describe('server flags', () => {
  it('map onto the INFERFLUX_* variables the config reads', () => {
    const r = parseServerArgv(['--port', '9000', '--host', '0.0.0.0', '--model', 'm.gguf', '--api-keys', 'k1:admin', '--auth', 'on', '--config', 'c.yaml']);
    expect(r).to.deep.equal({
      kind: 'run',
      env: { INFERFLUX_PORT: '9000', INFERFLUX_HOST: '0.0.0.0', INFERFLUX_MODEL_PATH: 'm.gguf', INFERFLUX_API_KEYS: 'k1:admin', INFERFLUX_AUTH_ENABLED: 'true', INFERFLUX_CONFIG: 'c.yaml' },
    });
    expect(flagsToEnv({ apiKeys: 'k', contextSize: '512', auth: 'auto' })).to.deep.equal({ INFERFLUX_API_KEYS: 'k', INFERFLUX_CONTEXT_SIZE: '512', INFERFLUX_AUTH_ENABLED: 'auto' });
  });

  it('help, version, and usage errors', () => {
    expect(parseServerArgv(['--help']).kind).to.equal('help');
    expect(parseServerArgv(['-v']).kind).to.equal('version');
    expect(parseServerArgv(['--prot', '1'])).to.include({ kind: 'error' });
    expect(parseServerArgv(['serve'])).to.include({ kind: 'error' });
    expect(parseServerArgv([])).to.deep.equal({ kind: 'run', env: {} });
  });
});

describe('status metrics', () => {
  it('sums a gauge by model over its other labels', () => {
    const text = [
      '# HELP inferflux_active_sequences x',
      'inferflux_active_sequences{model="a",phase="decode"} 2',
      'inferflux_active_sequences{model="a",phase="prefill"} 1',
      'inferflux_active_sequences{phase="decode",model="b"} 4',
      'inferflux_scheduler_queue_depth{model="a"} 3',
    ].join('\n');
    expect([...samplesByModel(text, 'inferflux_active_sequences')]).to.deep.equal([['a', 3], ['b', 4]]);
    expect([...samplesByModel(text, 'inferflux_scheduler_queue_depth')]).to.deep.equal([['a', 3]]);
  });
});
