// Prints scripts/bench-queue's table: medians per scenario and implementation.
const [file, rounds] = process.argv.slice(2);
const rows = require("fs").readFileSync(file, "utf8").trim().split("\n").map(JSON.parse);
const key = (r) => `${r.op}${r.concurrency ? ` c=${r.concurrency}` : ""}`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const groups = new Map();
for (const r of rows) {
  const group = groups.get(key(r)) ?? {};
  (group[r.impl] ??= []).push(r);
  groups.set(key(r), group);
}
const stat = (runs, field) => median(runs.map((r) => r[field]));
const fmt = (n, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

console.log(`medians of ${rounds} interleaved runs each`);
console.log("scenario".padEnd(13), "rust".padStart(15), "node".padStart(15), "rust/node".padStart(10), "  peak RSS rust / node");
for (const [name, { rust, node }] of groups) {
  if (rust[0].op === "signup-enqueue") {
    console.log(name.padEnd(13), `${fmt(stat(rust, "p50_ms"), 2)} ms p50`.padStart(15), `  ${fmt(stat(rust, "p99_ms"), 2)} ms p99 (a signup's ${rust[0].jobs_per_signup} jobs, enqueued concurrently; Rust only)`);
    continue;
  }
  const rss = `${fmt(stat(rust, "peak_rss_mb"), 1)} MB` + (node ? ` / ${fmt(stat(node, "peak_rss_mb"), 1)} MB` : "");
  if (!node) {
    console.log(name.padEnd(13), `${fmt(stat(rust, "jobs_per_sec"))} jobs/s`.padStart(15), "  (bare bullmq-official Worker, no runtime)", rss);
    continue;
  }
  const latency = rust[0].op === "latency";
  const field = latency ? "p50_ms" : "jobs_per_sec";
  const [r, n] = [stat(rust, field), stat(node, field)];
  const unit = latency ? " ms p50" : " jobs/s";
  const digits = latency ? 2 : 0;
  const ratio = latency ? n / r : r / n;
  console.log(name.padEnd(13), (fmt(r, digits) + unit).padStart(15), (fmt(n, digits) + unit).padStart(15), `${fmt(ratio, 2)}x`.padStart(10), " ", rss);
  if (latency) {
    console.log("".padEnd(13), `${fmt(stat(rust, "p99_ms"), 2)} ms p99`.padStart(15), `${fmt(stat(node, "p99_ms"), 2)} ms p99`.padStart(15));
  }
}
console.log("(latency: rust/node is node's latency over ours, so above 1 means we are faster)");
