/**
 * Raw GBNF checks (gbnf-check.ts) and why they exist: llama.cpp kills the process on some
 * grammars instead of throwing, shown here in a child process.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferFluxError } from '../../src/errors.js';
import { checkGbnf } from '../../src/runtime/grammar/gbnf-check.js';
import { compileAnyJsonObject } from '../../src/runtime/grammar/json-schema-to-gbnf.js';

const DEEP = `root ::= ${'('.repeat(200_000)}"a"${')'.repeat(200_000)}\n`;

function refusal(text: string): string {
  try {
    checkGbnf(text, 'grammar');
  } catch (err) {
    expect(err).to.be.instanceOf(InferFluxError);
    expect((err as InferFluxError).status).to.equal(400);
    expect((err as InferFluxError).param).to.equal('grammar');
    return (err as InferFluxError).message;
  }
  throw new Error(`expected the grammar to be refused: ${text.slice(0, 80)}`);
}

describe('raw GBNF check', function () {
  this.timeout(60_000);

  it("accepts llama.cpp's own grammars and InferFlux's compiled ones", () => {
    for (const f of ['json.gbnf', 'json_arr.gbnf', 'list.gbnf', 'english.gbnf']) {
      const text = readFileSync(new URL(`../../node_modules/node-llama-cpp/llama/grammars/${f}`, import.meta.url), 'utf8');
      expect(checkGbnf(text, 'grammar').rules, f).to.be.greaterThan(0);
    }
    expect(checkGbnf(compileAnyJsonObject({ param: 'p' }).gbnf, 'grammar').rules).to.be.greaterThan(5);
    const s = checkGbnf('root ::= "a" item{2,5} # comment\nitem ::= [a-z\\-] | "\\x41" | ( "b"\n  | "c" )*\n', 'grammar');
    expect(s).to.deep.include({ rules: 2 });
  });

  it('refuses what llama.cpp would refuse, with a message that says why', () => {
    expect(refusal('root ::= "a')).to.include('not closed');
    expect(refusal('root ::= foo\n')).to.include("'foo' is used but not defined");
    expect(refusal('item ::= "a"\n')).to.include("no 'root' rule");
    expect(refusal('root ::= "a"\nroot ::= "b"\n')).to.include('defined twice');
    expect(refusal('root ::= "\\q"')).to.include('unknown escape');
    expect(refusal('root ::= *')).to.include('nothing to repeat');
    expect(refusal('')).to.include('empty');
  });

  it('refuses what llama.cpp would mishandle: deep nesting, huge repetitions, tokens, empty classes, NUL', () => {
    expect(refusal(DEEP)).to.include('nest deeper than 64');
    expect(refusal('root ::= "a"{0,3000}')).to.include('above 1000');
    expect(refusal('root ::= "a"{1001}')).to.include('above 1000');
    expect(refusal('root ::= <[5]>')).to.include('token elements');
    expect(refusal('root ::= !<hello>')).to.include('token elements');
    expect(refusal('root ::= []')).to.include('class is empty');
    expect(refusal('root ::= "\\x00"')).to.include('code point 0');
    expect(refusal('root ::= "\\U00110000"')).to.include('above U+10FFFF');
    expect(refusal(`root ::= ${'"a"{1000} '.repeat(30)}`)).to.include('expands to more than');
    expect(refusal(`root ::= "${'a'.repeat(600 * 1024)}"`)).to.include('larger than');
  });

  it('the deeply nested grammar kills a process that hands it to llama.cpp (why the check exists)', () => {
    // A script file, not `node -e`: node-llama-cpp's binary self-test re-runs its own file.
    const dir = mkdtempSync(join(tmpdir(), 'ifx-gbnf-'));
    const file = join(dir, 'probe.mjs');
    const lib = new URL('../../node_modules/node-llama-cpp/dist/index.js', import.meta.url).href;
    writeFileSync(
      file,
      `import { getLlama, LlamaLogLevel } from ${JSON.stringify(lib)};
      const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: 1 });
      const b = llama._bindings;
      const text = (await import('node:fs')).readFileSync(process.env.GBNF_FILE, 'utf8');
      try { new b.AddonGrammar(text, { addonExports: b, rootRuleName: 'root' }); console.log('parsed'); }
      catch (e) { console.log('threw'); }
      await llama.dispose();`,
    );
    const run = (gbnf: string) => {
      // A file, not an environment variable: the deep grammar is past the 128 KiB a variable may hold.
      writeFileSync(join(dir, 'g.gbnf'), gbnf);
      return spawnSync(process.execPath, [file], { env: { ...process.env, GBNF_FILE: join(dir, 'g.gbnf') }, encoding: 'utf8', timeout: 50_000 });
    };
    const deep = run(DEEP);
    expect(deep.status).to.equal(null);
    expect(deep.signal).to.equal('SIGSEGV');
    rmSync(dir, { recursive: true, force: true });
  });
});
