// forwardAlerts: the intake workflow's alerts (workflows/intake.ts) handed to this engine's webhook,
// which starts and signals the incidents exactly as it does for a batch it answers itself. In the
// order they came for any one alert (a resolution never overtakes its firing), many alerts at once
// otherwise. What was handed on is recorded in the heartbeat, so a retry (this engine died, or
// Temporal refused some) hands on only the rest; and a retry never sends a firing again that has its
// own resolution later in the call, since that firing may have gone out before the resolution did.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { IntakeActivities, IntakeAlert } from './contract.js';
import { failureTypes } from './failures.js';
import { inFlightLimit } from './limits.js';

export type { IntakeActivities, IntakeAlert, IntakeForwarded, IntakeRequest } from './contract.js';

/** This engine's webhook, as the intake's activity sees it. */
export interface IntakeDeliverer {
  /** Checks the alert again and hands it to Temporal; rejects when Temporal did not take it. */
  deliver(alert: unknown): Promise<void>;
  /** Alerts this engine is forwarding from the intake and has not handed on yet: +n, then −1 each. */
  forwarding(delta: number): void;
}

/** Alerts handed on at once (the spool forwards a wave of 48 at a time, for the same reasons). */
const concurrency = 48;

export function createIntakeActivities(deliverer: () => IntakeDeliverer | undefined): IntakeActivities {
  return {
    async forwardAlerts(req) {
      const ctx = Context.current();
      const alerts = Array.isArray(req?.alerts) ? req.alerts : [];
      const webhook = deliverer();
      if (!webhook) {
        throw ApplicationFailure.create({
          message: 'forwardAlerts: the webhook of this engine is not up yet; tried again',
          type: failureTypes.transient,
        });
      }
      const earlier = ctx.info.attempt > 1 ? heartbeatMarks(ctx.info.heartbeatDetails, alerts.length) : new Set<number>();
      const skip = new Set(earlier);
      if (ctx.info.attempt > 1) for (const i of firingsBeforeTheirResolution(alerts)) skip.add(i);
      const delivered = new Set(earlier);
      const failures: unknown[] = [];
      const todo = alerts.length - skip.size;
      webhook.forwarding(todo);
      const limit = inFlightLimit(concurrency);
      const signal = ctx.cancellationSignal;
      try {
        // One chain per alert, its deliveries in order: a chain stops at its first refusal, so a
        // later resolution of the same alert is not handed on before its firing.
        await Promise.all(
          chains(alerts).map(async (chain) => {
            for (const i of chain) {
              if (skip.has(i)) continue;
              if (signal.aborted) return;
              try {
                await limit(() => webhook.deliver(alerts[i]), signal);
                delivered.add(i);
                ctx.heartbeat({ delivered: [...delivered] });
              } catch (err) {
                failures.push(err);
                return;
              } finally {
                webhook.forwarding(-1);
              }
            }
          }),
        );
      } finally {
        // Those never begun (a chain stopped, or cancelled) count down here.
        const begun = delivered.size - earlier.size + failures.length;
        webhook.forwarding(-(todo - begun));
      }
      if (failures.length > 0) {
        const first = failures[0];
        const text = first instanceof Error ? first.message : String(first);
        throw ApplicationFailure.create({
          message: `forwardAlerts: Temporal did not take ${failures.length} of ${todo} alert(s); tried again: ${text.slice(0, 300)}`,
          type: failureTypes.transient,
          details: [{ delivered: delivered.size }],
        });
      }
      return { delivered: delivered.size - earlier.size, skipped: skip.size };
    },
  };
}

function heartbeatMarks(details: unknown, alerts: number): Set<number> {
  const list = (details as { delivered?: unknown } | undefined)?.delivered;
  return new Set(Array.isArray(list) ? list.filter((i): i is number => Number.isInteger(i) && i >= 0 && i < alerts) : []);
}

/** The key that keeps one alert's deliveries in order: its fingerprint, or its labels without one. */
function keyOf(alert: IntakeAlert): string {
  return typeof alert?.fingerprint === 'string' && alert.fingerprint ? alert.fingerprint : JSON.stringify(alert?.labels ?? {});
}

/** The alerts' indices, one list per alert key, each in order. */
export function chains(alerts: IntakeAlert[]): number[][] {
  const byKey = new Map<string, number[]>();
  alerts.forEach((alert, i) => {
    const key = keyOf(alert);
    const chain = byKey.get(key);
    if (chain) chain.push(i);
    else byKey.set(key, [i]);
  });
  return [...byKey.values()];
}

/** Indices of firings that a resolution of the same alert follows in the call. */
export function firingsBeforeTheirResolution(alerts: IntakeAlert[]): number[] {
  const out: number[] = [];
  for (const chain of chains(alerts)) {
    let lastResolved = -1;
    // Entries that are not alerts (left out when handed on) have no status.
    chain.forEach((i, at) => alerts[i]?.status === 'resolved' && (lastResolved = at));
    for (const i of chain.slice(0, Math.max(0, lastResolved))) if (alerts[i]?.status === 'firing') out.push(i);
  }
  return out;
}
