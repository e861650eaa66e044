// The operator API: the door operators (and the CLI, the console and chat on their behalf) use to
// read incidents and to approve, reject, acknowledge, cancel, run and start maintenance. Its own
// listener, apart from the Alertmanager webhook; every route but /healthz authenticates first.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { durationPattern, parseDuration } from '../../config/duration.js';
import type { EngineConfig } from '../../config/schema.js';
import { outcomes, type DecisionKind, type IncidentFilter } from './operatorCommands.js';
import type { Temporal } from './operatorTemporal.js';
import { HttpError, parseListen, readBody, requestPath, send, utf8 } from '../alerts/webhookHttp.js';
import { ActionError, OperatorActions } from './actions.js';
import { auditLog, type AuditLog } from './audit.js';
import { chatRoute } from './chat.js';
import { consoleRoute } from './console.js';
import { OperatorCredentials, type Door, type Identity } from './credentials.js';

/** What a route handler gets: the parsed request and the engine's operator actions. */
export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  query: URLSearchParams;
  remote: string;
  actions: OperatorActions;
  credentials: OperatorCredentials;
  audit: AuditLog;
  config: EngineConfig;
  logger: Logger;
  /** The bearer credential's operator, or a 401 (audited) when there is none. */
  authenticate(via?: Door): Promise<Identity>;
  /** The body as JSON, bounded by api.maxBodyBytes. */
  json(): Promise<Record<string, unknown>>;
  /** The body as bytes, bounded by api.maxBodyBytes (for signed requests). */
  body(): Promise<Buffer>;
}

/** Another door served on the same listener (chat interactions, the console). */
export interface OperatorRoute {
  /** Matches the path (and method); the first route that matches handles the request. */
  matches(method: string, path: string): boolean;
  handle(ctx: RouteContext): Promise<void>;
}

export interface OperatorApiOptions {
  config: EngineConfig;
  temporal: Temporal;
  logger: Logger;
  /** Overrides config.api.listen (port 0 in tests). */
  listen?: string;
  routes?: OperatorRoute[];
}

export interface OperatorApi {
  server: Server;
  actions: OperatorActions;
  listen(): Promise<{ url: string; port: number }>;
  close(): Promise<void>;
}

const prefix = '/api/v1';
const decisions: readonly DecisionKind[] = ['approve', 'reject', 'acknowledge'];

export function createOperatorApi(opts: OperatorApiOptions): OperatorApi {
  const { config, logger } = opts;
  const api = config.api;
  if (!api) throw new Error('the operator API needs an api section in the config');
  const audit = auditLog(logger);
  const credentials = new OperatorCredentials(config);
  const actions = new OperatorActions({ config, temporal: opts.temporal, audit });
  const consoleDoor = consoleRoute();
  const routes = [...(opts.routes ?? []), apiRoutes(), chatRoute(), consoleDoor];

  const server = createServer((req, res) => {
    const path = requestPath(req.url);
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    let bodyRead: Promise<Buffer> | undefined;
    const body = () => (bodyRead ??= readBody(req, res, api.maxBodyBytes, 'api.maxBodyBytes'));
    const ctx: RouteContext = {
      req,
      res,
      path: path ?? '/',
      query: new URLSearchParams((req.url ?? '').split('?')[1] ?? ''),
      remote,
      actions,
      credentials,
      audit,
      config,
      logger,
      async authenticate(via = 'api') {
        // The console's page calls this API with its session cookie (and its CSRF token on a POST)
        // instead of a bearer credential; such a call is taken as coming through the console.
        const session = consoleDoor.sessionOf({ req, path: path ?? '?', remote, audit });
        if (session) return session;
        const result = await credentials.authenticate(req.headers.authorization, via);
        if (result.ok) return result.identity;
        audit({ via, action: `${req.method} ${(path ?? '?').slice(0, 120)}`, result: 'unauthenticated', reason: result.reason, remote });
        // The caller learns only that it was refused: which part of its credential was wrong
        // (unknown, expired, bad signature) is for the audit log.
        throw new HttpError(401, 'authentication required: an operator token or a signed bearer token', {
          'WWW-Authenticate': 'Bearer realm="remediation"',
        });
      },
      json: async () => {
        const text = utf8Decode(await body());
        if (text.trim() === '') return {};
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          throw new HttpError(400, 'the body is not JSON');
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HttpError(400, 'expected a JSON object');
        return parsed as Record<string, unknown>;
      },
      body,
    };
    void handle(ctx).catch((err: unknown) => answerError(res, logger, err));
  });
  // A client that trickles its headers or body holds a socket: bounded like the webhook.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;

  async function handle(ctx: RouteContext): Promise<void> {
    const method = ctx.req.method ?? 'GET';
    if (ctx.path === '/healthz') return send(ctx.res, 200, { ok: true }, noStore);
    const route = routes.find((r) => r.matches(method, ctx.path));
    if (!route) throw new HttpError(404, `no route ${method} ${ctx.path.slice(0, 120)}`);
    await route.handle(ctx);
  }

  const { host, port } = parseListen(opts.listen ?? api.listen);
  return {
    server,
    actions,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const bound = (server.address() as AddressInfo).port;
          resolve({ url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`, port: bound });
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

const noStore = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };

/** The JSON routes under /api/v1. */
function apiRoutes(): OperatorRoute {
  return {
    matches: (_method, path) => path === prefix || path.startsWith(`${prefix}/`),
    async handle(ctx) {
      const who = await ctx.authenticate(ctx.req.headers['x-remediate-client'] === 'cli' ? 'cli' : 'api');
      const method = ctx.req.method ?? 'GET';
      const parts = ctx.path
        .slice(prefix.length + 1)
        .split('/')
        .map(decodeSegment);
      const reply = (body: unknown, status = 200) => send(ctx.res, status, body, noStore);
      const { actions, remote } = ctx;

      if (method === 'GET' && parts[0] === 'whoami' && parts.length === 1) {
        const o = who.operator;
        return reply({
          operator: o.name,
          role: o.role,
          via: who.via,
          credential: who.credential,
          ...(o.runbooks ? { runbooks: o.runbooks } : {}),
          ...(o.targets ? { targets: o.targets } : {}),
        });
      }
      if (method === 'GET' && parts[0] === 'incidents' && parts.length === 1)
        return reply({ incidents: await actions.listIncidents(who, incidentFilter(ctx.query), remote) });
      if (method === 'GET' && parts[0] === 'incidents' && parts.length === 2)
        return reply(await actions.showIncident(who, parts[1]!, remote));
      if (method === 'POST' && parts[0] === 'incidents' && parts.length === 3) {
        const [, id, verb] = parts;
        const body = await ctx.json();
        if (decisions.includes(verb as DecisionKind))
          return reply(await actions.decide(who, id!, verb as DecisionKind, body.reason, remote));
        if (verb === 'cancel') return reply(await actions.cancel(who, id!, body.reason, remote));
      }
      if (method === 'GET' && parts[0] === 'schedules' && parts.length === 1)
        return reply({ schedules: await actions.listSchedules(who, remote) });
      if (method === 'GET' && parts[0] === 'report' && parts.length === 1) {
        const { sinceMs, objective } = reportPeriod(ctx.query);
        return reply(await actions.report(who, sinceMs, remote, ctx.query.get('target') || undefined, objective));
      }
      if (method === 'POST' && parts[0] === 'runbooks' && parts[2] === 'runs' && parts.length === 3) {
        const body = await ctx.json();
        const target = body.target;
        if (typeof target !== 'string') throw new HttpError(400, 'target: expected a target name');
        if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') throw new HttpError(400, 'dryRun: expected true or false');
        if (body.severity !== undefined && typeof body.severity !== 'string') throw new HttpError(400, 'severity: expected a string');
        return reply(
          await actions.run(
            who,
            {
              runbook: parts[1]!,
              target,
              dryRun: body.dryRun as boolean | undefined,
              reason: body.reason as string | undefined,
              severity: body.severity as string | undefined,
            },
            remote,
          ),
          201,
        );
      }
      if (method === 'POST' && parts[0] === 'maintenance' && parts[2] === 'runs' && parts.length === 3)
        return reply(await actions.runMaintenance(who, parts[1]!, remote), 201);
      if (method === 'GET' && parts[0] === 'maintenance' && parts[1] === 'windows' && parts.length === 2)
        return reply({ windows: await actions.maintenanceWindows(who, remote) });
      if (method === 'POST' && parts[0] === 'maintenance' && parts[2] === 'close' && parts.length === 3) {
        const body = await ctx.json();
        if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') throw new HttpError(400, 'dryRun: expected true or false');
        return reply(await actions.closeMaintenance(who, parts[1]!, body.dryRun === true, remote));
      }
      if (method === 'GET' && parts[0] === 'slots' && parts.length === 1) return reply({ slots: await actions.slots(who, remote) });
      if (method === 'POST' && parts[0] === 'slots' && parts[2] === 'release' && parts.length === 3) {
        const body = await ctx.json();
        if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') throw new HttpError(400, 'dryRun: expected true or false');
        return reply(await actions.releaseSlots(who, parts[1]!, body.dryRun === true, remote));
      }
      throw new HttpError(404, `no route ${method} ${ctx.path.slice(0, 120)}`);
    },
  };
}

function incidentFilter(q: URLSearchParams): IncidentFilter {
  const flag = (name: string) => q.get(name) === 'true' || q.get(name) === '1';
  const text = (name: string) => {
    const v = q.get(name);
    return v === null || v === '' ? undefined : v;
  };
  const limit = Number(q.get('limit') ?? '50');
  if (!Number.isInteger(limit) || limit < 1 || limit > 1_000) throw new HttpError(400, 'limit: expected a whole number from 1 to 1000');
  const outcome = text('outcome');
  if (outcome !== undefined && !outcomes.includes(outcome as never))
    throw new HttpError(400, `outcome: expected one of ${outcomes.join(', ')}`);
  return {
    ...(flag('open') ? { open: true } : {}),
    ...(flag('closed') ? { closed: true } : {}),
    ...(text('target') ? { target: text('target') } : {}),
    ...(text('alert') ? { alert: text('alert') } : {}),
    ...(outcome ? { outcome } : {}),
    ...(text('runbook') ? { runbook: text('runbook') } : {}),
    limit,
  };
}

/** `?since=36h` (any duration) or `?days=7`; `?objective=99.9` (percent). */
function reportPeriod(q: URLSearchParams): { sinceMs: number; objective?: number } {
  const since = q.get('since');
  const days = q.get('days');
  let sinceMs = 7 * 86_400_000;
  if (since !== null) {
    if (!durationPattern.test(since)) throw new HttpError(400, 'since: expected a duration such as 36h or 7d');
    sinceMs = parseDuration(since);
  } else if (days !== null) {
    if (!/^\d{1,3}$/.test(days)) throw new HttpError(400, 'days: expected a whole number of days from 1 to 366');
    sinceMs = Number(days) * 86_400_000;
  }
  const objective = q.get('objective');
  if (objective === null) return { sinceMs };
  if (!/^\d{1,2}(\.\d{1,4})?$/.test(objective)) throw new HttpError(400, 'objective: expected a percentage such as 99.9');
  return { sinceMs, objective: Number(objective) / 100 };
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, 'the path is not valid percent-encoding');
  }
}

function utf8Decode(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new HttpError(400, 'the body is not UTF-8');
  }
}

function answerError(res: ServerResponse, logger: Logger, err: unknown): void {
  if (res.headersSent) return void res.destroy();
  if (err instanceof HttpError) return send(res, err.status, { error: err.message }, { ...noStore, ...err.headers });
  if (err instanceof ActionError)
    return send(res, err.status, { error: err.message }, err.status === 429 ? { ...noStore, 'Retry-After': '30' } : noStore);
  // CommandError from a query's validation (a bad filter value) is the caller's mistake.
  if (err instanceof Error && 'exitCode' in err) {
    const code = (err as { exitCode: number }).exitCode;
    return send(res, code === 2 ? 404 : code === 3 ? 503 : 400, { error: err.message }, noStore);
  }
  logger.error({ err: String(err).slice(0, 500) }, 'operator API request failed');
  send(res, 500, { error: 'internal error; see the engine log' }, noStore);
}
