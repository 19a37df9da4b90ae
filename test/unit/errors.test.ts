import { expect } from 'chai';
import { MessageChannel } from 'node:worker_threads';
import { once } from 'node:events';
import { ERRORS, InferFluxError, type ErrorSpec, type WireError } from '../../src/errors.js';
import { postFrame, unpack, T, type Envelope } from '../../src/actors/protocol.js';

describe('error table', () => {
  it('every 429 and 503 tells the client when to retry', () => {
    const missing = Object.values(ERRORS as Record<string, ErrorSpec>)
      .filter((e) => (e.status === 429 || e.status === 503) && !(e.retryAfter! > 0))
      .map((e) => e.code);
    expect(missing).to.deep.equal([]);
    expect(new InferFluxError('queue_full').retryAfter).to.equal(1);
    expect(new InferFluxError('rate_limited', undefined, { retryAfter: 17 }).retryAfter).to.equal(17);
    expect(new InferFluxError('invalid_request').retryAfter).to.equal(undefined);
  });

  it('an error keeps its code, message, param and retry time across a real thread port', async () => {
    const { port1, port2 } = new MessageChannel();
    try {
      const sent = [
        new InferFluxError('queue_full', "The queue for model 'm' is full."),
        new InferFluxError('rate_limited', 'slow down', { retryAfter: 42 }),
        new InferFluxError('invalid_request', 'bad', { param: 'messages' }),
      ];
      for (const err of sent) {
        postFrame(port1, [T.Fail, err.toWire()]);
        const [env] = (await once(port2, 'message')) as [Envelope];
        const back = InferFluxError.fromWire(unpack<[number, WireError]>(env.f)[1]);
        expect({ code: back.code, message: back.message, param: back.param, retryAfter: back.retryAfter, status: back.status }).to.deep.equal({
          code: err.code,
          message: err.message,
          param: err.param,
          retryAfter: err.retryAfter,
          status: err.status,
        });
      }
      expect(InferFluxError.fromWire({ code: 'queue_full', message: 'x', retryAfter: 9 }).retryAfter).to.equal(9);
      expect(InferFluxError.fromWire({ code: 'toString' as never, message: 'x' }).code).to.equal('internal_error');
    } finally {
      port1.close();
    }
  });
});
