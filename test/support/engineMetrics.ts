// An engine's own /metrics, read the way Prometheus scrapes it.

/** The value of one series, named exactly as exposed (`name{label="value"}`); 0 when not exposed yet. */
export async function engineMetric(webhookUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${webhookUrl}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(`${series} `));
  return found ? Number(found.split(' ').at(-1)) : 0;
}
