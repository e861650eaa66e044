// The CLI's side of the operator API: one HTTP call per command, with the operator's bearer token,
// a deadline on the whole exchange, a bounded answer, and every failure turned into a message that
// says what to do and an exit code a script can branch on (see triggers/cli/cli.ts).
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { formatDuration } from '../../config/duration.js';
import type { DecisionKind, IncidentDetail, IncidentFilter, IncidentRow, ScheduleRow } from '../operators/operatorCommands.js';
import type { IncidentReport } from '../reports/report.js';
import type { StartedRun } from './runbookRun.js';
import { terminalSafe } from './table.js';
import type { ClosedWindows, OpenWindow } from '../operators/maintenanceWindows.js';
import type { HeldSlot, ReleasedSlots } from '../operators/destructiveSlots.js';

/**
 * A CLI failure with its exit code: 1 bad input or conflict, 2 not found, 3 the engine (or its
 * Temporal) unreachable or failing, 4 no credentials, or credentials refused, or not allowed.
 */
export class CliError extends Error {
  constructor(
    readonly exitCode: 1 | 2 | 3 | 4,
    message: string,
  ) {
    super(message);
  }
}

export interface Whoami {
  operator: string;
  role: string;
  via: string;
  credential: string;
  runbooks?: string[];
  targets?: string[];
}

export interface Decided {
  workflowId: string;
  decision: DecisionKind;
  operator: string;
}

export interface OperatorApiClientOptions {
  url: string;
  token: string;
  /** Where the token came from, for the message when it is refused. */
  tokenFrom: string;
  /** Where the URL came from, for the message when nothing answers there. */
  urlFrom?: string;
  timeoutMs?: number;
}

/** A list of a thousand incidents with timelines is a few MB; past this it is not our engine talking. */
const maxAnswerBytes = 32 * 1024 * 1024;
const maxErrorChars = 500;

export class OperatorApiClient {
  private readonly timeoutMs: number;

  constructor(private readonly opts: OperatorApiClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  get url(): string {
    return this.opts.url;
  }

  get tokenFrom(): string {
    return this.opts.tokenFrom;
  }

  whoami(): Promise<Whoami> {
    return this.call('GET', 'whoami', { expect: (b) => typeof b.operator === 'string' && typeof b.role === 'string' });
  }

  async incidents(filter: IncidentFilter): Promise<IncidentRow[]> {
    const query = new URLSearchParams();
    if (filter.open) query.set('open', '1');
    if (filter.closed) query.set('closed', '1');
    for (const key of ['target', 'alert', 'outcome', 'runbook'] as const) if (filter[key] !== undefined) query.set(key, filter[key]!);
    query.set('limit', String(filter.limit));
    const answer = await this.call<{ incidents: IncidentRow[] }>('GET', 'incidents', { query, expect: (b) => Array.isArray(b.incidents) });
    return answer.incidents;
  }

  incident(workflowId: string): Promise<IncidentDetail> {
    return this.call('GET', `incidents/${encodeURIComponent(workflowId)}`, {
      expect: (b) => typeof b.workflowId === 'string' && typeof b.status === 'string',
    });
  }

  decide(workflowId: string, kind: DecisionKind, reason: string): Promise<Decided> {
    return this.call('POST', `incidents/${encodeURIComponent(workflowId)}/${kind}`, {
      body: { reason },
      expect: (b) => typeof b.operator === 'string',
    });
  }

  async cancel(workflowId: string, reason: string | undefined): Promise<void> {
    await this.call('POST', `incidents/${encodeURIComponent(workflowId)}/cancel`, { body: reason === undefined ? {} : { reason } });
  }

  schedules(): Promise<ScheduleRow[]> {
    return this.call<{ schedules: ScheduleRow[] }>('GET', 'schedules', { expect: (b) => Array.isArray(b.schedules) }).then(
      (a) => a.schedules,
    );
  }

  /** A report reads one history per closed incident: it gets more time than a read. */
  report(since: string, target?: string, objectivePercent?: number): Promise<IncidentReport & { truncated: boolean }> {
    const query = new URLSearchParams({
      since,
      ...(target !== undefined ? { target } : {}),
      ...(objectivePercent !== undefined ? { objective: String(objectivePercent) } : {}),
    });
    return this.call('GET', 'report', { query, timeoutMs: Math.max(this.timeoutMs, 120_000), expect: (b) => Array.isArray(b.perTarget) });
  }

  run(runbook: string, body: { target: string; dryRun: boolean; severity: string; reason?: string }): Promise<StartedRun> {
    return this.call('POST', `runbooks/${encodeURIComponent(runbook)}/runs`, { body, expect: (b) => typeof b.workflowId === 'string' });
  }

  runMaintenance(schedule: string): Promise<{ workflowId: string; runId: string }> {
    return this.call('POST', `maintenance/${encodeURIComponent(schedule)}/runs`, { expect: (b) => typeof b.workflowId === 'string' });
  }

  maintenanceWindows(): Promise<OpenWindow[]> {
    return this.call<{ windows: OpenWindow[] }>('GET', 'maintenance/windows', { expect: (b) => Array.isArray(b.windows) }).then(
      (a) => a.windows,
    );
  }

  closeMaintenance(schedule: string, dryRun: boolean): Promise<ClosedWindows> {
    return this.call('POST', `maintenance/${encodeURIComponent(schedule)}/close`, {
      body: { dryRun },
      expect: (b) => Array.isArray(b.holders) && Array.isArray(b.silencesExpired),
    });
  }

  slots(): Promise<HeldSlot[]> {
    return this.call<{ slots: HeldSlot[] }>('GET', 'slots', { expect: (b) => Array.isArray(b.slots) }).then((a) => a.slots);
  }

  releaseSlots(workflowId: string, dryRun: boolean): Promise<ReleasedSlots> {
    return this.call('POST', `slots/${encodeURIComponent(workflowId)}/release`, {
      body: { dryRun },
      expect: (b) => Array.isArray(b.released),
    });
  }

  private async call<T>(
    method: 'GET' | 'POST',
    route: string,
    opts: { query?: URLSearchParams; body?: unknown; timeoutMs?: number; expect?: (body: Record<string, unknown>) => boolean } = {},
  ): Promise<T> {
    const url = new URL(`${this.opts.url}/api/v1/${route}${opts.query ? `?${opts.query}` : ''}`);
    const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const answer = await exchange(
      url,
      method,
      {
        authorization: `Bearer ${this.opts.token}`,
        // The engine records the door: the timeline says "(via cli)".
        'x-remediate-client': 'cli',
        accept: 'application/json',
        'user-agent': 'remediate-cli',
        ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
      },
      body,
      timeoutMs,
    ).catch((err: unknown) => {
      throw unreachable(this.opts.url, this.opts.urlFrom, err, timeoutMs);
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body.toString('utf8'));
    } catch {
      throw new CliError(
        answer.status >= 500 ? 3 : 1,
        `the operator API at ${this.opts.url} answered ${answer.status} with something that is not JSON (${terminalSafe(answer.contentType || 'no content type')}); ` +
          "is REMEDIATE_URL the engine's api.listen address (not its webhook)?",
      );
    }
    const json = (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : {}) as Record<string, unknown>;
    if (answer.status >= 200 && answer.status < 300) {
      if (opts.expect && !opts.expect(json))
        throw new CliError(
          3,
          `the operator API at ${this.opts.url} answered ${method} /api/v1/${route.split('/')[0]} with an unexpected shape (an engine of another version?)`,
        );
      return json as T;
    }
    throw this.refusal(answer, json);
  }

  private refusal({ status, location }: Answer, json: Record<string, unknown>): CliError {
    if (status >= 300 && status < 400)
      return new CliError(
        1,
        `the operator API at ${this.opts.url} redirects to ${terminalSafe((location ?? '?').slice(0, 200))}; set REMEDIATE_URL to where it points (the token is never sent on to another address)`,
      );
    const said = typeof json.error === 'string' ? terminalSafe(json.error.slice(0, maxErrorChars)) : `HTTP ${status}`;
    if (status === 401)
      return new CliError(
        4,
        `the token was refused by the operator API at ${this.opts.url} (token from ${this.opts.tokenFrom}): it is unknown, expired or revoked; ask an administrator for a new one`,
      );
    if (status === 403) return new CliError(4, `refused: ${said}`);
    if (status === 404) return new CliError(2, said);
    if (status >= 500) return new CliError(3, `the operator API at ${this.opts.url} could not do it (${status}): ${said}`);
    return new CliError(1, said);
  }
}

interface Answer {
  status: number;
  contentType: string;
  location?: string;
  body: Buffer;
}

/** One request, all of it (connect, send, answer) within the deadline; no redirects followed. */
function exchange(url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method, headers, agent: false });
    const deadline = setTimeout(() => req.destroy(Object.assign(new Error('deadline'), { code: 'ETIMEDOUT' })), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(deadline);
      reject(err);
    };
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxAnswerBytes)
          return void req.destroy(Object.assign(new Error(`answer over ${maxAnswerBytes} bytes`), { code: 'ETOOBIG' }));
        chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(deadline);
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type'] ?? ''),
          ...(res.headers.location ? { location: res.headers.location } : {}),
          body: Buffer.concat(chunks),
        });
      });
    });
    req.end(body);
  });
}

function unreachable(url: string, urlFrom: string | undefined, err: unknown, timeoutMs: number): CliError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const from = urlFrom === undefined ? '' : urlFrom === 'the default' ? ' (the default; set REMEDIATE_URL)' : ` (from ${urlFrom})`;
  const where = `the operator API at ${url}${from}`;
  if (code === 'ECONNREFUSED')
    return new CliError(
      3,
      `cannot reach ${where}: connection refused (is the engine running with an api section, and is REMEDIATE_URL right?)`,
    );
  if (code === 'ETIMEDOUT') return new CliError(3, `${where} did not answer within ${formatDuration(timeoutMs)}`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new CliError(3, `cannot reach ${where}: its host name does not resolve`);
  if (code === 'ETOOBIG') return new CliError(3, `${where} sent an answer over ${maxAnswerBytes} bytes; refusing it`);
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code))
    return new CliError(
      3,
      `cannot reach ${where}: its TLS certificate is not trusted (${code}); NODE_EXTRA_CA_CERTS=<ca.pem> adds a private CA`,
    );
  return new CliError(3, `cannot reach ${where}: ${terminalSafe(code || (err as Error).message || String(err))}`);
}
