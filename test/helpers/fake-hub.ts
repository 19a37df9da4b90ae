/**
 * A loopback HTTP server that plays a Hugging Face-style hub for the pull tests, and a second one
 * that plays its CDN. The hub answers the file listing (`/api/models/{owner}/{repo}/tree/main`,
 * with each file's LFS SHA-256) and redirects `/{owner}/{repo}/resolve/main/{path}` to the CDN,
 * which serves bytes with Range support. Files can be made to misbehave: `corrupt` (bytes differ
 * from the listed digest), `dropOnce` (the first response is cut mid-body), `oversize` (more
 * bytes than listed), `redirectTo` (the resolve URL redirects there instead). Repositories named in
 * `gated` need `Authorization: Bearer <token>` on the hub (401 without it, 403 with another
 * token), as Hugging Face answers for gated and private repositories; every request records the
 * Authorization header it carried, so a test can check that the CDN never saw the token.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ensureModel } from '../../src/runtime/gguf/generate.js';

export interface HubFileSpec {
  path: string;
  bytes: Buffer;
  /** Digest in the listing; defaults to the bytes' SHA-256. */
  listedSha256?: string;
  listedSize?: number;
  dropOnce?: boolean;
  oversize?: boolean;
  redirectTo?: string;
}

export interface HubRequest {
  server: 'hub' | 'cdn';
  url: string;
  range: string | undefined;
  authorization: string | undefined;
  /** Body bytes sent in answer. */
  sent: number;
}

export interface FakeHub {
  url: string;
  cdnUrl: string;
  requests: HubRequest[];
  repos: Map<string, HubFileSpec[]>;
  close(): Promise<void>;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The tiny generated model's bytes (seed 0; generated once per machine). */
export async function tinyGguf(): Promise<Buffer> {
  const path = join(tmpdir(), 'inferflux-test-models', 'tiny-seed0.gguf');
  await ensureModel('tiny', path, 0);
  return readFileSync(path);
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

export interface FakeHubOptions {
  /** Repositories that need the token. */
  gated?: string[];
  token?: string;
}

export async function startFakeHub(repos: Record<string, HubFileSpec[]>, opts: FakeHubOptions = {}): Promise<FakeHub> {
  const requests: HubRequest[] = [];
  const map = new Map(Object.entries(repos));
  const dropped = new Set<string>();
  const find = (repo: string, path: string) => map.get(repo)?.find((f) => f.path === path);

  const cdn = createServer((req: IncomingMessage, res) => {
    const rec: HubRequest = { server: 'cdn', url: req.url ?? '', range: req.headers.range, authorization: req.headers.authorization, sent: 0 };
    requests.push(rec);
    const m = /^\/blob\/([^/]+)\/(.+)$/.exec(req.url ?? '');
    const file = m ? find(decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)) : undefined;
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    let body = file.oversize ? Buffer.concat([file.bytes, Buffer.alloc(4096, 7)]) : file.bytes;
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'accept-ranges': 'bytes' });
    } else {
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
    }
    body = body.subarray(start);
    if (file.dropOnce && !dropped.has(file.path)) {
      // Half the body, then the connection drops: the client must resume with a range.
      dropped.add(file.path);
      const half = body.subarray(0, Math.floor(body.length / 2));
      rec.sent = half.length;
      res.write(half, () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    rec.sent = body.length;
    res.end(body);
  });
  const cdnUrl = await listen(cdn);

  const hub = createServer((req, res) => {
    requests.push({ server: 'hub', url: req.url ?? '', range: req.headers.range, authorization: req.headers.authorization, sent: 0 });
    const url = new URL(req.url ?? '/', 'http://x');
    const repoOf = /^\/(?:api\/models\/)?([^/]+)\/([^/]+)\//.exec(url.pathname);
    if (repoOf && opts.gated?.includes(`${decodeURIComponent(repoOf[1]!)}/${decodeURIComponent(repoOf[2]!)}`)) {
      const auth = req.headers.authorization;
      if (auth === undefined) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"Access to this repository is restricted. You must be authenticated to access it."}');
        return;
      }
      if (auth !== `Bearer ${opts.token}`) {
        res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"Access to this gated repository is not allowed with this token."}');
        return;
      }
    }
    const tree = /^\/api\/models\/([^/]+)\/([^/]+)\/tree\/main$/.exec(url.pathname);
    if (tree) {
      const files = map.get(`${decodeURIComponent(tree[1]!)}/${decodeURIComponent(tree[2]!)}`);
      if (!files) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Repository not found"}');
        return;
      }
      const listing = [
        { type: 'file', oid: 'a'.repeat(40), size: 1234, path: 'README.md' },
        ...files.map((f) => ({
          type: 'file',
          oid: 'b'.repeat(40),
          size: 135,
          path: f.path,
          lfs: { oid: f.listedSha256 ?? sha256(f.bytes), size: f.listedSize ?? f.bytes.length, pointerSize: 135 },
        })),
      ];
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(listing));
      return;
    }
    const resolve = /^\/([^/]+)\/([^/]+)\/resolve\/main\/(.+)$/.exec(url.pathname);
    if (resolve) {
      const repo = `${decodeURIComponent(resolve[1]!)}/${decodeURIComponent(resolve[2]!)}`;
      const path = resolve[3]!.split('/').map(decodeURIComponent).join('/');
      const file = find(repo, path);
      if (!file) {
        res.writeHead(404).end();
        return;
      }
      const location = file.redirectTo ?? `${cdnUrl}/blob/${encodeURIComponent(repo)}/${encodeURIComponent(path)}`;
      res.writeHead(302, { location }).end();
      return;
    }
    res.writeHead(404).end();
  });
  const url = await listen(hub);
  return {
    url,
    cdnUrl,
    requests,
    repos: map,
    close: async () => {
      hub.closeAllConnections();
      cdn.closeAllConnections();
      await Promise.all([new Promise((r) => hub.close(r)), new Promise((r) => cdn.close(r))]);
    },
  };
}
