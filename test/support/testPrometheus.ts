// A Prometheus of a test's own (Debian's binary, as the stack runs it): its own port and data
// directory, a one-second scrape and rule evaluation, the rules the test gives it. The stack's
// Prometheus is shared and its config is not the test's to change.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reservedPort } from './ports.js';
import { untilHttpOk } from './wait.js';

export interface QueryAnswer {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

export interface AlertState {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

export interface TestPrometheus {
  url: string;
  /** An instant query, answered as the HTTP API answers it (errors included, not thrown). */
  query(expr: string): Promise<QueryAnswer>;
  /** Values of an instant query's series; [] when it has none. */
  values(expr: string): Promise<number[]>;
  /** Label values, as Grafana's label_values() variables ask for them. */
  labelValues(label: string, match: string): Promise<string[]>;
  alerts(): Promise<AlertState[]>;
  output(): string;
  stop(): Promise<void>;
}

export async function startPrometheus(opts: { job: string; targets: string[]; rules: string }): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'remediation-prometheus-'));
  const port = await reservedPort();
  writeFileSync(join(dir, 'rules.yml'), opts.rules);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    JSON.stringify({
      global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
      rule_files: [join(dir, 'rules.yml')],
      scrape_configs: [{ job_name: opts.job, static_configs: [{ targets: opts.targets }] }],
    }),
  );
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (err) => (text += `\n${String(err)}`));
  const url = `http://127.0.0.1:${port}`;
  try {
    await untilHttpOk(`${url}/-/ready`, `the test's Prometheus on ${url}`);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}:\n${text.slice(-2_000)}`);
  }

  const get = async <T>(path: string): Promise<T> =>
    (await (await fetch(`${url}${path}`, { signal: AbortSignal.timeout(5_000) })).json()) as T;
  const query = (expr: string) => get<QueryAnswer>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
  return {
    url,
    query,
    async values(expr) {
      const answer = await query(expr);
      if (answer.status !== 'success') throw new Error(`${expr}: ${answer.error}`);
      return answer.data!.result.map((r) => Number(r.value[1]));
    },
    async labelValues(label, match) {
      return (await get<{ data: string[] }>(`/api/v1/label/${label}/values?match[]=${encodeURIComponent(match)}`)).data;
    },
    async alerts() {
      return (await get<{ data: { alerts: AlertState[] } }>('/api/v1/alerts')).data.alerts;
    },
    output: () => text,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
