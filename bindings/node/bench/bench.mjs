// The JavaScript side of bindings/node/bench/run: the same calls through the package and, in
// this same process, through the core library in Rust (`benchRustBaseline`), printed with
// their ratios. Run by `run`, which builds the release addon with the `bench` feature next to a
// copy of the package's index.js in the folder HEADWAY_PACKAGE.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";

const require = createRequire(import.meta.url);
const packageDir = process.env.HEADWAY_PACKAGE;
const native = require(path.join(packageDir, "headway.node"));
const { Store, Status } = require(packageDir);
const items = process.env.HEADWAY_BENCH_QUICK ? 1_000 : 10_000;
const user = "learner-bench";
const dir = mkdtempSync(path.join(tmpdir(), "headway-node-bench-"));
const file = (name) => path.join(dir, name);
const update = (i) => ({ userId: user, courseId: "do_course", batchId: "0130", contentId: `do_${i}`,
                         status: Status.InProgress, progress: 50 });
const now = () => Number(process.hrtime.bigint()) / 1e6;

// The package's Store is the addon's own class: the same build on both sides.
if (!(Store.openInMemory() instanceof native.Store)) throw new Error("two different addons");

const rust = native.benchRustBaseline(file("rust-record.db"), file("rust-batch.db"), user, items);

const store = Store.open(file("node-record.db"), { durability: "processCrash" });
let started = now();
for (let i = 0; i < items; i++) store.record(update(i));
const recordPerS = items / ((now() - started) / 1e3);
// The best of 5 reads on each side; the first reads are printed too (Node's first pays for
// compiling the unpacking code).
let stateMs = Infinity;
let coldStateMs;
for (let run = 0; run < 5; run++) {
  started = now();
  const read = store.state(user);
  const ms = now() - started;
  if (read.length !== items) throw new Error(`read ${read.length} items`);
  coldStateMs ??= ms;
  stateMs = Math.min(stateMs, ms);
}
store.close();

const batch = Array.from({ length: items }, (_, i) => update(i));
const batchStore = Store.open(file("node-batch.db"), { durability: "processCrash" });
started = now();
const raised = batchStore.recordBatch(batch);
const recordBatchMs = now() - started;
if (raised !== items) throw new Error(`recordBatch raised ${raised}`);
batchStore.close();

// A Node process holding an open 10,000-item store (the file just written), read once.
const rss = JSON.parse(execFileSync(process.execPath, ["-e", `
  const { Store } = require(${JSON.stringify(packageDir)});
  const before = process.memoryUsage().rss;
  const store = Store.open(${JSON.stringify(file("node-record.db"))});
  const read = store.state(${JSON.stringify(user)}).length;
  // Peak: maxRSS is in KiB.
  console.log(JSON.stringify({ before, open: process.memoryUsage().rss, peak: process.resourceUsage().maxRSS * 1024, read }));
`], { encoding: "utf8" }));
rmSync(dir, { recursive: true, force: true });

const f = (x, digits = 0) => x.toFixed(digits).padStart(9);
console.log(`headway Node benchmark, ${items} items, ProcessCrash durability, release, one process`);
console.log(`record       Node ${f(recordPerS)}/s  | Rust ${f(rust.recordPerS)}/s  | ratio ${(recordPerS / rust.recordPerS).toFixed(2)} (goal >= 0.8)`);
console.log(`state        Node ${f(stateMs, 2)} ms | Rust ${f(rust.stateMs, 2)} ms | Node takes ${(stateMs / rust.stateMs).toFixed(2)}x Rust's time (goal <= 3x); first reads ${coldStateMs.toFixed(2)} / ${rust.firstStateMs.toFixed(2)} ms (${(coldStateMs / rust.firstStateMs).toFixed(2)}x)`);
console.log(`recordBatch  Node ${f(recordBatchMs, 1)} ms | Rust ${f(rust.recordBatchMs, 1)} ms | ratio ${(rust.recordBatchMs / recordBatchMs).toFixed(2)} (Rust time / Node time, goal >= 0.8)`);
console.log(`RSS          Node holding an open ${rss.read}-item store, read once: peak ${(rss.peak / 2 ** 20).toFixed(1)} MiB, now ${(rss.open / 2 ** 20).toFixed(1)} MiB (after require, before opening: ${(rss.before / 2 ** 20).toFixed(1)} MiB)`);
