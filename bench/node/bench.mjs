// Queue benchmark, Node side: BullMQ's own Worker with a no-op processor,
// the same scenarios as worker/benches/queue.rs. Run by scripts/bench-queue.
//   node bench.mjs add <jobs> | work <jobs> <concurrency> | mixed <jobs> <concurrency> | latency <samples>
import { readFileSync } from "node:fs";
import { Queue, Worker } from "bullmq";

const url = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const connection = { host: url.hostname, port: Number(url.port || 6379) };
const name = "welcome-email";
const prefix = "bull";
const [op, a, b] = process.argv.slice(2);

const peakRssMb = () => {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith("VmHWM:"));
  return Number(line.replace(/[^0-9]/g, "")) / 1024;
};

const add = async (queue, jobs, batch) => {
  for (let added = 0; added < jobs; added += batch) {
    const count = Math.min(batch, jobs - added);
    await queue.addBulk(
      Array.from({ length: count }, (_, i) => ({ name, data: { n: added + i }, opts: { removeOnComplete: true } })),
    );
  }
};

// Resolves once `target` jobs ran, after a graceful close (completions written).
const workUntilDone = (concurrency, target, onStart) =>
  new Promise((resolve) => {
    let done = 0;
    const worker = new Worker(
      name,
      async () => {
        onStart?.(performance.now());
        if (++done === target) setImmediate(() => worker.close().then(resolve));
        return null;
      },
      { connection, prefix, concurrency },
    );
  });

const report = (line) => console.log(JSON.stringify({ impl: "node", ...line, peak_rss_mb: peakRssMb() }));
const throughput = (op, jobs, concurrency, ms) =>
  report({ op, jobs, concurrency, secs: ms / 1000, jobs_per_sec: jobs / (ms / 1000) });

const queue = new Queue(name, { connection, prefix });
const started = performance.now();
if (op === "add") {
  await add(queue, Number(a), 1000);
  throughput("add", Number(a), null, performance.now() - started);
} else if (op === "work") {
  await workUntilDone(Number(b), Number(a));
  throughput("work", Number(a), Number(b), performance.now() - started);
} else if (op === "mixed") {
  await Promise.all([add(queue, Number(a), 100), workUntilDone(Number(b), Number(a))]);
  throughput("mixed", Number(a), Number(b), performance.now() - started);
} else if (op === "latency") {
  const samples = Number(a);
  let waiting;
  const starts = { push: (t) => waiting?.(t) };
  const worker = workUntilDone(1, samples + 1, (t) => starts.push(t));
  const latencies = [];
  for (let n = 0; n <= samples; n++) {
    const began = new Promise((resolve) => (waiting = resolve));
    const sent = performance.now();
    await add(queue, 1, 1);
    const at = await began;
    if (n > 0) latencies.push(at - sent);
  }
  await worker;
  latencies.sort((x, y) => x - y);
  const pct = (p) => latencies[Math.min(latencies.length, Math.max(1, Math.ceil(latencies.length * p))) - 1];
  report({ op: "latency", samples, p50_ms: pct(0.5), p99_ms: pct(0.99) });
} else {
  throw new Error(`unknown op ${op}`);
}
await queue.close();
