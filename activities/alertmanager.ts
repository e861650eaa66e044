// Alertmanager through its API v2: silences the engine creates and expires (maintenance windows,
// incidents under way), the silences that cover a target, and the alerts still firing.
//
// Alertmanager is an HTTP service that may be restarting just when it is needed: refused
// connections, timeouts and 5xx are retryable; a 4xx is an answer (bad matcher, unknown silence)
// and is reported with Alertmanager's own words, non-retryable.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { FiringAlertsRequest, FiringAlertsResult, SilenceMatcher, SilenceRequest } from './contract.js';
import { maxAlertLines } from '../config/runbookSchema.js';
import { formatMatchers, matchesAll, matchesEverything, validateMatcher, type Labels } from '../config/matchers.js';
import { authFailed, badInput, operation, targetNotFound, transient } from './failures.js';
import { activitySignal, untilAborted } from './limits.js';

export interface AlertmanagerDeps {
  /** Base URL such as http://127.0.0.1:9093 (a path prefix is kept; user:password becomes basic auth). */
  url: string;
  timeoutMs: number;
}

export interface ActiveSilence {
  id: string;
  matchers: SilenceMatcher[];
  createdBy: string;
  comment: string;
  startsAt: string;
  endsAt: string;
  /** Found as the config's manual override (alertmanager.override), not by the labels. */
  override?: true;
}

/** A silence as the engine reports it: its comment capped. */
function activeSilence(
  s: { id: string; createdBy: string; comment: string; startsAt: string; endsAt: string },
  matchers: SilenceMatcher[],
): ActiveSilence {
  return { id: s.id, matchers, createdBy: s.createdBy, comment: capHead(s.comment, commentBytes), startsAt: s.startsAt, endsAt: s.endsAt };
}

export interface FiringAlert {
  fingerprint: string;
  labels: Labels;
  annotations: Record<string, string>;
  startsAt: string;
  /** active, suppressed (silenced or inhibited) or unprocessed. */
  state: string;
  silencedBy: string[];
  inhibitedBy: string[];
}

export interface ListAlertsOptions {
  /** Include alerts a silence covers (default true: a silenced alert is still firing). */
  silenced?: boolean;
  /** Include alerts another alert inhibits (default true). */
  inhibited?: boolean;
}

/** Alertmanager's gettableSilence, the fields used here. */
interface GettableSilence {
  id: string;
  status: { state: 'active' | 'pending' | 'expired' };
  matchers: Array<{ name: string; value: string; isRegex: boolean; isEqual?: boolean }>;
  createdBy: string;
  comment: string;
  startsAt: string;
  endsAt: string;
}

interface GettableAlert {
  fingerprint: string;
  labels: Labels;
  annotations?: Record<string, string>;
  startsAt: string;
  status: { state: string; silencedBy?: string[]; inhibitedBy?: string[] };
}

const commentBytes = 1_024;
/** A label value in an `alerts` step's lines, at most this many characters. */
const alertLabelChars = 120;
/** An `alerts` step's line, before its start time, at most this many characters. */
const alertLineChars = 400;
const alertNames = 50;
const annotationBytes = 2_048;
const errorTextChars = 300;
/**
 * A silence left by an earlier attempt of the same request ends a little before the one this
 * attempt would create; up to this much earlier it is reused instead of duplicated.
 */
const reuseSlackMs = 5 * 60_000;

export function createAlertmanagerActivities(deps: AlertmanagerDeps) {
  const am = alertmanagerApi(deps);

  async function silences(what: string, opts: CallOptions = {}): Promise<GettableSilence[]> {
    return (await am.call(what, 'GET', '/api/v2/silences', undefined, opts)).json as GettableSilence[];
  }

  // Alertmanager lists every silence it keeps, the expired ones of its whole retention (5 days by
  // default) included: hundreds of kilobytes to fetch and parse for each check in a storm. Checks
  // asked while a listing is on its way share it, but each silence write of this engine's drops the
  // listing on its way when it ends: a check after a create sees that silence, as it would with a
  // listing of its own. Each check still waits on its own cancellation, and fails under its own name.
  let listing: Promise<GettableSilence[]> | undefined;
  const listingWhat = 'listing of silences';

  async function sharedSilences(what: string): Promise<GettableSilence[]> {
    if (!listing) {
      const mine = silences(listingWhat, { shared: true });
      listing = mine;
      const forget = () => {
        if (listing === mine) listing = undefined;
      };
      mine.then(forget, forget);
    }
    try {
      return await untilAborted(listing, activitySignal());
    } catch (err) {
      throw renamed(err, listingWhat, what);
    }
  }

  /** A silence write (create, expire): a check asked after it ends does not share a listing asked before. */
  async function write<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } finally {
      listing = undefined;
    }
  }

  /** Firing alerts that carry all the given labels (with the same values). */
  async function listAlerts(labels: Labels, options: ListAlertsOptions = {}): Promise<FiringAlert[]> {
    const what = `listing of alerts with ${formatLabels(labels)}`;
    const query = new URLSearchParams({
      active: 'true',
      silenced: String(options.silenced ?? true),
      inhibited: String(options.inhibited ?? true),
    });
    // Alertmanager filters server-side with its own matcher parser; names outside the classic
    // label syntax are left to the filter below, which is the one that decides.
    for (const [name, value] of Object.entries(labels)) {
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) query.append('filter', `${name}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
    }
    const alerts = (await am.call(what, 'GET', `/api/v2/alerts?${query}`)).json as GettableAlert[];
    return alerts
      .filter((a) => Object.entries(labels).every(([k, v]) => a.labels[k] === v))
      .map((a) => ({
        fingerprint: a.fingerprint,
        labels: a.labels,
        annotations: Object.fromEntries(Object.entries(a.annotations ?? {}).map(([k, v]) => [k, capHead(v, annotationBytes)])),
        startsAt: a.startsAt,
        state: a.status.state,
        silencedBy: a.status.silencedBy ?? [],
        inhibitedBy: a.status.inhibitedBy ?? [],
      }));
  }

  async function silence(what: string, id: string): Promise<GettableSilence> {
    const res = await am.call(what, 'GET', `/api/v2/silence/${encodeURIComponent(id)}`, undefined, {
      notFound: `Alertmanager has no silence '${id}'`,
    });
    return res.json as GettableSilence;
  }

  return {
    /**
     * Silences the matched alerts for durationMs from now. Retrying a request whose first attempt
     * reached Alertmanager reuses that silence (same matchers, author and comment, not expired)
     * instead of leaving a duplicate that nobody would expire.
     */
    async createSilence(req: SilenceRequest): Promise<{ silenceId: string; dryRun: boolean }> {
      const what = `creation of silence ${formatMatchers(req.matchers ?? [])}`;
      checkSilenceRequest(what, req);
      if (req.dryRun) return { silenceId: 'dry-run', dryRun: true };

      const startsAt = new Date();
      const endsAt = new Date(startsAt.getTime() + req.durationMs);
      const earlier = (await silences(what)).find(
        (s) =>
          s.status.state !== 'expired' &&
          s.createdBy === req.createdBy &&
          s.comment === req.comment &&
          sameMatchers(s.matchers, req.matchers) &&
          Date.parse(s.endsAt) >= endsAt.getTime() - reuseSlackMs,
      );
      if (earlier) return { silenceId: earlier.id, dryRun: false };

      const res = await write(() =>
        am.call(what, 'POST', '/api/v2/silences', {
          matchers: req.matchers.map((m) => ({ name: m.name, value: m.value, isRegex: m.isRegex, isEqual: m.isEqual })),
          startsAt: startsAt.toISOString(),
          endsAt: endsAt.toISOString(),
          createdBy: req.createdBy,
          comment: req.comment,
        }),
      );
      const id = (res.json as { silenceID?: string } | undefined)?.silenceID;
      if (!id) throw transient(what, `Alertmanager answered ${res.status} without a silence id`);
      return { silenceId: id, dryRun: false };
    },

    /** Idempotent: a silence that has already expired (by time or by hand) counts as expired. */
    async expireSilence(silenceId: string, dryRun: boolean): Promise<{ expired: boolean }> {
      const what = operation('expiry', 'silence', silenceId);
      if (!silenceId) throw badInput(what, 'no silence id given');
      // Reading first tells an unknown id (non-retryable) from one already expired (done), and
      // lets a dry run report the unknown id as well.
      const current = await silence(what, silenceId);
      if (current.status.state === 'expired') return { expired: true };
      if (dryRun) return { expired: false };
      try {
        await write(() =>
          am.call(what, 'DELETE', `/api/v2/silence/${encodeURIComponent(silenceId)}`, undefined, {
            notFound: `Alertmanager has no silence '${silenceId}'`,
          }),
        );
      } catch (err) {
        // Some Alertmanager versions answer 500 "already expired" rather than 200 when the silence
        // ended between the two calls (by time, or by a concurrent expiry).
        const after = await silence(what, silenceId).catch(() => undefined);
        if (after?.status.state === 'expired') return { expired: true };
        throw err;
      }
      return { expired: true };
    },

    /**
     * Active silences whose matchers all match the labels (or, given several label sets, any one of
     * them), as Alertmanager would apply them; with `override`, also every active silence made of
     * exactly those matchers as written, = or =~ alike (a team's manual override, such as amtool's
     * alertname="Auto.*", which silences no real alert), override first.
     */
    async findActiveSilences(labels: Labels | Labels[], override: readonly SilenceMatcher[] = []): Promise<ActiveSilence[]> {
      const sets = Array.isArray(labels) ? labels : [labels];
      const what = `lookup of silences covering ${formatLabels(sets[0] ?? {})}`;
      const found: ActiveSilence[] = [];
      const overrides: ActiveSilence[] = [];
      // amtool's alertname="Auto.*" is an equality matcher whose value is the text Auto.*; a team that
      // writes =~ means the same override.
      const same = (a: SilenceMatcher, b: SilenceMatcher) => a.name === b.name && a.value === b.value && a.isEqual === b.isEqual;
      for (const s of await sharedSilences(what)) {
        if (s.status.state !== 'active') continue;
        const matchers = s.matchers.map((m) => ({ name: m.name, value: m.value, isRegex: m.isRegex, isEqual: m.isEqual ?? true }));
        if (override.length > 0 && matchers.length === override.length && override.every((o) => matchers.some((m) => same(m, o)))) {
          overrides.push({ ...activeSilence(s, matchers), override: true });
          continue;
        }
        let covers: boolean;
        try {
          covers = sets.some((set) => matchesAll(matchers, set));
        } catch (err) {
          // RE2 accepts a few things JavaScript does not (named groups as (?P<x>…)). One such silence
          // must not blind the engine to every other one.
          warn(`silence ${s.id} skipped: ${(err as Error).message}`);
          continue;
        }
        if (covers) found.push(activeSilence(s, matchers));
      }
      return [...overrides, ...found];
    },

    /**
     * Silences not yet expired (active or pending) that this engine made (createdBy) with a comment
     * that starts with `commentStart`: how a maintenance window's silence is found again once the
     * run that made it, and knew its id, is gone.
     */
    async engineSilences(createdBy: string, commentStart: string): Promise<ActiveSilence[]> {
      const what = `lookup of silences by '${createdBy}'`;
      if (!createdBy || !commentStart) throw badInput(what, 'no author or comment given');
      return (await silences(what))
        .filter((s) => s.status.state !== 'expired' && s.createdBy === createdBy && s.comment.startsWith(commentStart))
        .map((s) =>
          activeSilence(
            s,
            s.matchers.map((m) => ({ name: m.name, value: m.value, isRegex: m.isRegex, isEqual: m.isEqual ?? true })),
          ),
        );
    },

    /** The `alerts` step: what is firing now, counted, named and summed up in lines a page can carry. */
    async firingAlerts(req: FiringAlertsRequest): Promise<FiringAlertsResult> {
      const what = `listing of firing alerts${Object.keys(req?.labels ?? {}).length ? ` with ${formatLabels(req.labels)}` : ''}`;
      if (!req || typeof req.labels !== 'object' || req.labels === null) throw badInput(what, 'no labels given ({} for every alert)');
      if (!Number.isInteger(req.limit) || req.limit < 1 || req.limit > maxAlertLines)
        throw badInput(what, `limit must be 1 to ${maxAlertLines}`);
      const alerts = (await listAlerts(req.labels, { silenced: req.silenced, inhibited: req.silenced })).filter(
        (a) => req.silenced || a.state === 'active',
      );
      return summariseAlerts(alerts, req.limit);
    },

    listAlerts,
  };
}

export type AlertmanagerActivities = ReturnType<typeof createAlertmanagerActivities>;

/** Refuses locally what Alertmanager would refuse, so that a dry run finds the same mistakes. */
function checkSilenceRequest(what: string, req: SilenceRequest): void {
  if (!Array.isArray(req.matchers) || req.matchers.length === 0)
    throw badInput(what, 'no matchers: a silence without matchers would silence every alert');
  for (const m of req.matchers) {
    try {
      validateMatcher(m);
    } catch (err) {
      throw badInput(what, (err as Error).message);
    }
  }
  if (matchesEverything(req.matchers))
    throw badInput(what, 'every matcher also matches an alert without that label, so the silence would silence every alert');
  if (!Number.isFinite(req.durationMs) || req.durationMs <= 0) throw badInput(what, `duration ${req.durationMs} ms is not positive`);
  if (!req.createdBy?.trim()) throw badInput(what, 'createdBy is empty');
  if (!req.comment?.trim()) throw badInput(what, 'comment is empty');
}

function sameMatchers(a: GettableSilence['matchers'], b: SilenceMatcher[]): boolean {
  const key = (m: { name: string; value: string; isRegex: boolean; isEqual?: boolean }) =>
    JSON.stringify([m.name, m.value, m.isRegex, m.isEqual ?? true]);
  const ka = a.map(key).sort();
  const kb = b.map(key).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i]);
}

interface CallOptions {
  /** The message for a 404, which then means "no such thing" (non-retryable). */
  notFound?: string;
  /** Not cancelled with the running activity: a call other activities share. */
  shared?: boolean;
}

interface CallResult {
  status: number;
  json: unknown;
}

function alertmanagerApi(deps: AlertmanagerDeps) {
  const base = new URL(deps.url);
  const headers: Record<string, string> = { accept: 'application/json' };
  // fetch refuses URLs with credentials; they become a header and never appear in a message.
  if (base.username || base.password) {
    const user = decodeURIComponent(base.username);
    const pass = decodeURIComponent(base.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    base.username = '';
    base.password = '';
  }
  const prefix = base.pathname.replace(/\/+$/, '');
  const where = `Alertmanager at ${base.origin}`;

  async function call(what: string, method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<CallResult> {
    const url = new URL(base.href);
    const [pathname, search] = path.split('?');
    url.pathname = `${prefix}${pathname}`;
    url.search = search ? `?${search}` : '';
    const cancelled = opts.shared ? undefined : activitySignal();
    const timeout = AbortSignal.timeout(deps.timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: cancelled ? AbortSignal.any([timeout, cancelled]) : timeout,
      });
      text = await res.text();
    } catch (err) {
      if (cancelled?.aborted) throw cancelled.reason;
      if (timeout.aborted) throw transient(what, `${where} did not answer within ${deps.timeoutMs} ms`);
      throw transient(what, `${where} cannot be reached: ${networkProblem(err)}`);
    }
    if (res.status >= 200 && res.status < 300) {
      try {
        return { status: res.status, json: text ? JSON.parse(text) : undefined };
      } catch {
        throw transient(what, `${where} answered ${res.status} with a body that is not JSON`);
      }
    }
    const said = `${where} answered ${res.status}: ${errorText(text)}`;
    if (res.status >= 500 || res.status === 408 || res.status === 429) throw transient(what, said);
    if (res.status === 404 && opts.notFound) throw targetNotFound(what, `${opts.notFound} (${res.status})`);
    if (res.status === 401 || res.status === 403) throw authFailed(what, said);
    throw badInput(what, said);
  }

  return { call };
}

/** A failure of a call made for `from`, named for `to` ("lookup of silences covering … failed: …"). */
function renamed(err: unknown, from: string, to: string): unknown {
  if (!(err instanceof ApplicationFailure) || !err.message.startsWith(`${from} `)) return err;
  return ApplicationFailure.create({
    message: `${to}${err.message.slice(from.length)}`,
    type: err.type ?? undefined,
    nonRetryable: err.nonRetryable ?? undefined,
  });
}

/** Alertmanager's errors are a JSON string, an object with a message, or plain text. */
function errorText(text: string): string {
  let out = text.trim();
  try {
    const parsed = JSON.parse(out) as unknown;
    if (typeof parsed === 'string') out = parsed;
    else if (parsed && typeof parsed === 'object' && 'message' in parsed) out = String((parsed as { message: unknown }).message);
  } catch {
    // Plain text.
  }
  out = out.replace(/\s+/g, ' ').trim();
  return out.length > errorTextChars ? `${out.slice(0, errorTextChars)}…` : out || '(empty body)';
}

function networkProblem(err: unknown): string {
  if (err instanceof ApplicationFailure) return err.message;
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause;
  if (cause?.code) return `${cause.message ?? cause.code} (${cause.code})`;
  return String(cause?.message ?? e?.message ?? err)
    .split('\n')[0]!
    .slice(0, errorTextChars);
}

function formatLabels(labels: Labels): string {
  return formatMatchers(Object.entries(labels).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true })));
}

/** Comments and annotations are read by people from the top: keep the head. */
function capHead(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  return `${buf
    .subarray(0, maxBytes)
    .toString('utf8')
    .replace(/\uFFFD+$/, '')} [... ${buf.length - maxBytes} bytes cut]`;
}

function warn(message: string): void {
  try {
    Context.current().log.warn(message);
  } catch {
    // Outside an activity (tests, CLI): nothing to log to.
  }
}

const severityRank = (s: string | undefined) => {
  const i = ['critical', 'error', 'warning', 'info'].indexOf(s ?? '');
  return i < 0 ? 4 : i;
};

/** Counted, named and, up to `limit`, one line each: most severe first, then newest. */
export function summariseAlerts(alerts: FiringAlert[], limit: number): FiringAlertsResult {
  // Alertmanager's labels are anyone's text: a line break in one must not start a line of its own
  // (a forged alert in the list), so control characters are written out; long values are cut.
  const cap = (v: string) => {
    const cut = v.length > alertLabelChars ? `${v.slice(0, alertLabelChars)}…` : v;
    return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  };
  const sorted = [...alerts].sort(
    (a, b) => severityRank(a.labels.severity) - severityRank(b.labels.severity) || b.startsAt.localeCompare(a.startsAt),
  );
  const lines = sorted.slice(0, limit).map((a) => {
    const { alertname, severity, ...rest } = a.labels;
    const labels = Object.entries(rest)
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([k, v]) => `${cap(k)}=${cap(v)}`)
      .join(', ');
    const held = a.state === 'active' ? '' : ` (${a.state})`;
    const line = `${cap(alertname ?? '(no alertname)')}${severity ? ` [${cap(severity)}]` : ''}${labels ? ` {${labels}}` : ''}`;
    // Many labels make a long line: its end (when, and whether it is held) is kept.
    return `${line.length > alertLineChars ? `${line.slice(0, alertLineChars)}…}` : line} since ${cap(a.startsAt)}${held}`;
  });
  if (sorted.length > limit) lines.push(`… and ${sorted.length - limit} more`);
  const names = [...new Set(alerts.map((a) => cap(a.labels.alertname ?? '(no alertname)')))].sort();
  return {
    count: alerts.length,
    names: names.length > alertNames ? [...names.slice(0, alertNames), `… and ${names.length - alertNames} more`] : names,
    summary: lines.join('\n'),
  };
}
