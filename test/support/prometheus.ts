// The stack's Prometheus, asked what it scraped: the real loop starts from what it sees.
import { stack } from './stack.js';
import { until } from './wait.js';

/** Prometheus's `up` for the job: 1 or 0 from the last scrape, undefined before the first. */
export async function promUp(job: string): Promise<number | undefined> {
  const r = await fetch(`${stack().prometheusUrl}/api/v1/query?query=${encodeURIComponent(`up{job="${job}"}`)}`);
  const body = (await r.json()) as { data: { result: Array<{ value: [number, string] }> } };
  const v = body.data.result[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

/** Waits (30 s at most) until Prometheus has scraped the job as up, so the next outage fires from a known state. */
export async function untilPromSeesUp(job: string, what = `prometheus sees ${job} up`): Promise<void> {
  await until(what, 30_000, async () => ((await promUp(job)) === 1 ? true : undefined));
}
