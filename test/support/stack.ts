// Tests reach the real services through the addresses the stack wrote when it came up.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const stackDir = process.env.STACK_DIR ?? '/var/tmp/remediation-stack';

/**
 * Which Temporal a test run uses: the stack's dev server (the default), or with TEMPORAL_MODE=cluster
 * in the test's environment the stack's cluster (`npm run stack -- up --temporal cluster`). Chosen by
 * the run, not by the stack's last up: one stack serves a dev-server run and a cluster run at once.
 */
export type TemporalMode = 'dev' | 'cluster';

/** A client certificate the stack issued for the cluster: PEM file paths (the key is 0600). */
export interface ClientCertificate {
  cert: string;
  key: string;
}

/**
 * The cluster's mTLS (stack/lib/cluster-tls.sh): the CA its frontend's certificate chains to, the
 * name that certificate carries, and one client certificate per kind of caller. The dev server has none.
 */
export interface TemporalTls {
  ca: string;
  serverName: string;
  engine: ClientCertificate;
  hostAgent: ClientCertificate;
  admin: ClientCertificate;
}

export interface Stack {
  temporalMode: TemporalMode;
  temporalAddress: string;
  temporalNamespace: string;
  /** Set on the cluster, which refuses clients without a certificate from its CA. */
  temporalTls?: TemporalTls;
  /** The dev server's UI; the cluster has none. */
  temporalUi?: string;
  dockerSocket: string;
  busyboxImage: string;
  systemdImage: string;
  systemdContainer: string;
  systemdUnit: string;
  systemdDemoUrl: string;
  demoContainer: string;
  demoUrl: string;
  pg: { host: string; port: number; user: string; password: string; database: string };
  mysql: { host: string; port: number; user: string; password: string; database: string };
  redis: { host: string; port: number; password: string };
  prometheusUrl: string;
  alertmanagerUrl: string;
  webhookPort: number;
  webhookToken: string;
  dir: string;
}

let cached: Stack | undefined;

export function temporalMode(): TemporalMode {
  const mode = process.env.TEMPORAL_MODE || 'dev';
  if (mode !== 'dev' && mode !== 'cluster') throw new Error(`TEMPORAL_MODE=${mode}: expected dev or cluster`);
  return mode;
}

export function stack(): Stack {
  if (cached) return cached;
  let text: string;
  try {
    text = readFileSync(join(stackDir, 'stack.env'), 'utf8');
  } catch {
    throw new Error(`the stack is not up (no ${join(stackDir, 'stack.env')}): run "npm run stack -- up" first`);
  }
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
  }
  const need = (k: string) => {
    const v = env[k];
    if (v === undefined) throw new Error(`stack.env has no ${k}`);
    return v;
  };
  const mode = temporalMode();
  const temporal = (key: 'ADDRESS' | 'NAMESPACE'): string => {
    const v = env[`TEMPORAL_${mode.toUpperCase()}_${key}`];
    if (v !== undefined) return v;
    // A stack.env written before the stack knew modes names only the dev server.
    if (mode === 'dev' && env.TEMPORAL_MODE === undefined) return key === 'ADDRESS' ? need('TEMPORAL_ADDRESS') : 'default';
    throw new Error(
      mode === 'cluster'
        ? `the stack's Temporal cluster is not up (stack.env has no TEMPORAL_CLUSTER_${key}): run "npm run stack -- up --temporal cluster"`
        : `the stack's Temporal dev server is not up (stack.env has no TEMPORAL_DEV_${key}): run "npm run stack -- up", or set TEMPORAL_MODE=cluster`,
    );
  };
  // A cluster the stack brought up before it had mTLS has none; one with mTLS names every file.
  const tls = (): TemporalTls | undefined => {
    if (mode !== 'cluster' || env.TEMPORAL_CLUSTER_TLS_CA === undefined) return undefined;
    const pair = (who: string): ClientCertificate => ({
      cert: need(`TEMPORAL_CLUSTER_TLS_${who}_CERT`),
      key: need(`TEMPORAL_CLUSTER_TLS_${who}_KEY`),
    });
    return {
      ca: need('TEMPORAL_CLUSTER_TLS_CA'),
      serverName: need('TEMPORAL_CLUSTER_TLS_SERVER_NAME'),
      engine: pair('ENGINE'),
      hostAgent: pair('HOST_AGENT'),
      admin: pair('ADMIN'),
    };
  };
  cached = {
    temporalMode: mode,
    temporalAddress: temporal('ADDRESS'),
    temporalNamespace: temporal('NAMESPACE'),
    temporalTls: tls(),
    temporalUi: mode === 'dev' ? env.TEMPORAL_UI : undefined,
    dockerSocket: need('DOCKER_SOCKET'),
    busyboxImage: need('BUSYBOX_IMAGE'),
    systemdImage: need('SYSTEMD_IMAGE'),
    systemdContainer: need('SYSTEMD_CONTAINER'),
    systemdUnit: need('SYSTEMD_UNIT'),
    systemdDemoUrl: need('SYSTEMD_DEMO_URL'),
    demoContainer: need('DEMO_CONTAINER'),
    demoUrl: need('DEMO_URL'),
    pg: {
      host: '127.0.0.1',
      port: Number(need('PG_PORT')),
      user: need('PG_USER'),
      password: need('PG_PASSWORD'),
      database: need('PG_DATABASE'),
    },
    mysql: {
      host: '127.0.0.1',
      port: Number(need('MYSQL_PORT')),
      user: need('MYSQL_USER'),
      password: need('MYSQL_PASSWORD'),
      database: need('MYSQL_DATABASE'),
    },
    redis: { host: '127.0.0.1', port: Number(need('REDIS_PORT')), password: need('REDIS_PASSWORD') },
    prometheusUrl: need('PROMETHEUS_URL'),
    alertmanagerUrl: need('ALERTMANAGER_URL'),
    webhookPort: Number(need('WEBHOOK_PORT')),
    webhookToken: need('WEBHOOK_TOKEN'),
    dir: stackDir,
  };
  return cached;
}
