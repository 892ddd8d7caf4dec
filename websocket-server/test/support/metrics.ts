/** Reads one series of a server's Prometheus `/metrics` (0 when it has not been counted yet). */
export async function metricValue(httpUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Polls `series` until `ok` accepts its value, or fails after `timeoutMs`. */
export async function waitForMetric(httpUrl: string, series: string, ok: (value: number) => boolean, timeoutMs = 5_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await metricValue(httpUrl, series);
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${series} is ${value}, not the expected value, after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
