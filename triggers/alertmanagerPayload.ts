// Alertmanager's webhook payload (version "4"), validated before anything acts on it.
// https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
import { z } from 'zod';

const labelSet = z.record(z.string());

export const webhookAlert = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: labelSet,
  annotations: labelSet,
  startsAt: z.string(),
  endsAt: z.string(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().min(1),
});

export const webhookPayload = z.object({
  version: z.literal('4', { errorMap: () => ({ message: 'expected "4" (the Alertmanager webhook payload version this receiver understands)' }) }),
  groupKey: z.string(),
  // Older Alertmanagers do not send it; absent means nothing was truncated.
  truncatedAlerts: z.number().int().min(0).default(0),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string(),
  groupLabels: labelSet,
  commonLabels: labelSet,
  commonAnnotations: labelSet,
  externalURL: z.string(),
  alerts: z.array(webhookAlert),
});

export type WebhookAlert = z.output<typeof webhookAlert>;
export type WebhookPayload = z.output<typeof webhookPayload>;

/** `alerts[2].labels.service: expected string, received number`: names the field, never echoes values. */
export function describePayloadError(error: z.ZodError): string {
  const shown = error.issues.slice(0, 5).map((issue) => {
    const path = issue.path.reduce<string>(
      (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : String(p)),
      '',
    );
    return `${path || '(body)'}: ${issue.message}`;
  });
  const more = error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : '';
  return `invalid Alertmanager payload: ${shown.join('; ')}${more}`;
}
