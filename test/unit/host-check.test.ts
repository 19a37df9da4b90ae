import { expect } from 'chai';
import { compileHostCheck } from '../../src/http/host-check.js';

describe('compileHostCheck', () => {
  it('the loopback default answers the loopback names on any port, and nothing else', () => {
    const ok = compileHostCheck(['localhost', '127.0.0.1', '[::1]']);
    for (const h of ['localhost', 'localhost:8080', 'LocalHost:1', 'localhost.:8080', '127.0.0.1:65535', '[::1]', '[::1]:8080']) expect(ok(h), h).to.equal(true);
    for (const h of ['', 'evil.example', 'evil.example:8080', 'localhost.evil.example', '127.0.0.1.nip.io', '127.0.0.2', '::1', '[::1', 'localhost:80:80', 'localhost:abc', 'localhost:123456', 'evil@localhost', ' ']) {
      expect(ok(h), h).to.equal(false);
    }
  });

  it('reads ports, subdomain wildcards and "*"', () => {
    const ok = compileHostCheck(['api.example.com:443', '*.svc.cluster.local', '10.0.0.5']);
    expect(['api.example.com:443', 'a.svc.cluster.local', 'x.y.svc.cluster.local:8080', '10.0.0.5:9'].map(ok)).to.deep.equal([true, true, true, true]);
    expect(['api.example.com', 'api.example.com:80', 'svc.cluster.local', 'evilsvc.cluster.local', '10.0.0.50'].map(ok)).to.deep.equal([false, false, false, false, false]);
    expect(compileHostCheck(['*'])('')).to.equal(true);
  });
});
