// Alertmanager's webhook payload (version "4"), validated before anything acts on it.
// https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
//
// Every field is bounded. Whatever is accepted travels on: into the spool, into workflow history
// (a 900 KB fingerprint sent 70 times got an incident terminated for history size), into every log
// line about the alert. The bounds sit well above what Alertmanager sends (a fingerprint is 16 hex
// characters, a label value rarely passes a few hundred). Alertmanager never retries a 400, so what
// decides nothing (URLs, annotation values, the group key) is cut to its bound, not refused; an
// alert whose labels or fingerprint break theirs is left out of its batch, and named; only a batch
// with nothing left to act on (or a broken envelope) is refused with a 400 naming the field.
import { z } from 'zod';

export const webhookLimits = {
  /** Alerts in one notification: Alertmanager's `max_alerts` on the receiver keeps it below. */
  alerts: 1_000,
  labels: 64,
  annotations: 64,
  /** Label and annotation names. */
  name: 128,
  labelValue: 1_024,
  annotationValue: 8_192,
  fingerprint: 128,
  url: 2_048,
  groupKey: 8_192,
  receiver: 256,
  /** An RFC 3339 time is at most 35 characters. */
  time: 64,
} as const;

const longerThan = (n: number) => `longer than ${n} characters`;
const bounded = (n: number) => z.string().max(n, longerThan(n));
/** Text that decides nothing: past its bound it is cut there (ending in …), not refused. */
const cut = (n: number) => z.string().transform((s) => (s.length > n ? `${s.slice(0, n - 1)}…` : s));

// Prometheus 3 allows any UTF-8 in label names (`service.name`, `http-route`), and a batch refused
// with 400 is never retried: such an alert would be lost. What no label name needs is refused:
// control and format characters (a forged log line, a bidi override) and the empty name.
const labelName = z
  .string()
  .max(webhookLimits.name, `name ${longerThan(webhookLimits.name)}`)
  .regex(/^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+$/u, 'not a label name (empty, or holds a control or format character)');

/**
 * A label or annotation set. The count is checked before any entry is, so ten thousand labels cost
 * one refusal, not ten thousand issues.
 */
function nameValueSet(what: 'labels' | 'annotations', maxEntries: number, maxValue: number) {
  return z
    .record(z.unknown())
    .superRefine((set, ctx) => {
      if (Object.keys(set).length > maxEntries) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `more than ${maxEntries} ${what}` });
    })
    .pipe(z.record(labelName, what === 'labels' ? bounded(maxValue) : cut(maxValue)));
}

const labelSet = nameValueSet('labels', webhookLimits.labels, webhookLimits.labelValue);
const annotationSet = nameValueSet('annotations', webhookLimits.annotations, webhookLimits.annotationValue);
const time = bounded(webhookLimits.time);
const url = cut(webhookLimits.url);

export const webhookAlert = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: labelSet,
  annotations: annotationSet,
  startsAt: time,
  endsAt: time,
  generatorURL: url.optional(),
  fingerprint: z.string().min(1).max(webhookLimits.fingerprint, longerThan(webhookLimits.fingerprint)),
});

const envelope = {
  version: z.literal('4', {
    errorMap: () => ({ message: 'expected "4" (the Alertmanager webhook payload version this receiver understands)' }),
  }),
  groupKey: cut(webhookLimits.groupKey),
  // Older Alertmanagers do not send it; absent means nothing was truncated.
  truncatedAlerts: z.number().int().min(0).default(0),
  status: z.enum(['firing', 'resolved']),
  receiver: cut(webhookLimits.receiver),
  groupLabels: labelSet,
  commonLabels: labelSet,
  commonAnnotations: annotationSet,
  externalURL: url,
};

const tooManyAlerts = `more than ${webhookLimits.alerts} alerts in one notification (set max_alerts on the webhook receiver)`;

export const webhookPayload = z.object({ ...envelope, alerts: z.array(webhookAlert).max(webhookLimits.alerts, tooManyAlerts) });

// The same checks, with the alerts left for later: see parseWebhookPayload.
const webhookEnvelope = z.object({ ...envelope, alerts: z.array(z.unknown()).max(webhookLimits.alerts, tooManyAlerts) });

export type WebhookAlert = z.output<typeof webhookAlert>;
export type WebhookPayload = z.output<typeof webhookPayload>;

/** An alert left out of its batch: where it was, and why (the field named, no value echoed). */
export interface InvalidAlert {
  index: number;
  reason: string;
}

/**
 * The envelope, then one alert at a time with `between()` awaited in between (a thousand alerts
 * take a while to check, and the webhook's other requests are answered meanwhile). An alert that
 * breaks its bounds is left out and listed; the batch fails only when its envelope does, or when
 * it held alerts and none of them passed.
 */
export async function parseWebhookPayload(
  raw: unknown,
  between: () => Promise<void>,
): Promise<z.SafeParseReturnType<unknown, WebhookPayload & { invalidAlerts: InvalidAlert[] }>> {
  const head = webhookEnvelope.safeParse(raw);
  if (!head.success) return head;
  const issues: z.ZodIssue[] = [];
  const alerts: WebhookAlert[] = [];
  const invalidAlerts: InvalidAlert[] = [];
  for (const [i, alert] of head.data.alerts.entries()) {
    await between();
    const r = webhookAlert.safeParse(alert, { path: ['alerts', i] });
    if (r.success) alerts.push(r.data);
    else {
      issues.push(...r.error.issues);
      invalidAlerts.push({ index: i, reason: describeIssues(r.error.issues.slice(0, 1)) });
    }
  }
  if (alerts.length === 0 && issues.length > 0) return { success: false, error: new z.ZodError(issues) };
  return { success: true, data: { ...head.data, alerts, invalidAlerts } };
}

/**
 * `alerts[2].labels.service: expected string, received number`: names the field, never echoes a
 * value whole. Label names are the sender's text: a name that is not a plain word is quoted with
 * its control and non-ASCII characters escaped, and cut short, as is every message.
 */
export function describePayloadError(error: z.ZodError): string {
  const more = error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : '';
  return `invalid Alertmanager payload: ${describeIssues(error.issues.slice(0, 5))}${more}`;
}

function describeIssues(issues: z.ZodIssue[]): string {
  const shown = issues.map((issue) => {
    const path = issue.path.reduce<string>((acc, p) => {
      if (typeof p === 'number') return `${acc}[${p}]`;
      if (/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(p)) return acc ? `${acc}.${p}` : p;
      return `${acc}[${printable(p, 40)}]`;
    }, '');
    return `${path || '(body)'}: ${clip(issue.message, 200)}`;
  });
  return shown.join('; ');
}

function clip(text: string, n: number): string {
  const cut = text.length > n ? `${text.slice(0, n)}…` : text;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** A JSON string literal of the first `n` characters, in printable ASCII only. */
function printable(text: string, n: number): string {
  const cut = text.length > n ? `${text.slice(0, n)}...` : text;
  return JSON.stringify(cut).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
