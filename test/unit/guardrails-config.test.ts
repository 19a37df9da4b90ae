/**
 * The `guardrails` config section: YAML, INFERFLUX_GUARDRAIL_* env overrides, and errors that name
 * the key, the value and where it came from.
 */
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load.js';
import { ENV, loadError, makeCwd } from '../helpers/config.js';


describe('config: guardrails section', () => {
  it('reads YAML, merging pii key by key over the default', () => {
    const yaml = 'guardrails:\n  blocklist: [classified, "top secret"]\n  pii:\n    action: redact\n  opa_endpoint: file://config/policy.json\n  opa_fail_mode: open\n';
    const cfg = loadConfig({ env: ENV, cwd: makeCwd(yaml) });
    expect(cfg.guardrails).to.deep.equal({
      blocklist: ['classified', 'top secret'],
      pii: { action: 'redact', kinds: ['email', 'phone', 'credit_card', 'iban', 'secret'], output: true },
      opaEndpoint: 'file://config/policy.json',
      opaTimeoutMs: 200,
      opaFailMode: 'open',
    });
  });

  it('reads pii.output: false (prompts only)', () => {
    const cfg = loadConfig({ env: ENV, cwd: makeCwd('guardrails:\n  pii:\n    action: redact\n    output: false\n') });
    expect(cfg.guardrails.pii).to.deep.equal({ action: 'redact', kinds: ['email', 'phone', 'credit_card', 'iban', 'secret'], output: false });
  });

  it('takes INFERFLUX_GUARDRAIL_* env overrides', () => {
    const cfg = loadConfig({
      env: {
        ...ENV,
        INFERFLUX_GUARDRAIL_BLOCKLIST: ' classified, pii ,,',
        INFERFLUX_GUARDRAIL_OPA_ENDPOINT: 'http://127.0.0.1:8181/v1/data/inferflux/allow',
        INFERFLUX_GUARDRAIL_OPA_TIMEOUT_MS: '150',
        INFERFLUX_GUARDRAIL_OPA_FAIL_MODE: 'OPEN',
      },
      cwd: makeCwd(),
    });
    expect(cfg.guardrails).to.deep.include({
      blocklist: ['classified', 'pii'],
      opaEndpoint: 'http://127.0.0.1:8181/v1/data/inferflux/allow',
      opaTimeoutMs: 150,
      opaFailMode: 'open',
    });
  });

  it('rejects bad values with the key path and the source', () => {
    expect(loadError({ ...ENV, INFERFLUX_GUARDRAIL_OPA_ENDPOINT: 'ftp://x' }).message).to.equal(
      'guardrails.opa_endpoint: must be "" or a URL starting with http://, https:// or file:// (got "ftp://x" from INFERFLUX_GUARDRAIL_OPA_ENDPOINT)',
    );
    expect(loadError({ ...ENV, INFERFLUX_GUARDRAIL_OPA_FAIL_MODE: 'maybe' }).key).to.equal('guardrails.opa_fail_mode');
    expect(loadError({ ...ENV, INFERFLUX_GUARDRAIL_OPA_TIMEOUT_MS: '0' }).key).to.equal('guardrails.opa_timeout_ms');
    expect(loadError(ENV, 'guardrails:\n  pii:\n    action: shred\n').key).to.equal('guardrails.pii.action');
    expect(loadError(ENV, 'guardrails:\n  pii:\n    kinds: [ssn]\n').key).to.equal('guardrails.pii.kinds[0]');
    expect(loadError(ENV, 'guardrails:\n  pii:\n    output: sometimes\n').key).to.equal('guardrails.pii.output');
    expect(loadError(ENV, 'guardrails:\n  blocklist: [""]\n').key).to.equal('guardrails.blocklist[0]');
    expect(loadError(ENV, 'guardrails:\n  opa: x\n').message).to.match(/^guardrails\.opa: unknown key/);
  });
});
