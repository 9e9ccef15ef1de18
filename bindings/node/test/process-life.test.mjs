// Process life (issue 19, item 4): a Node process with a subscribed listener, a background sync
// or a sync in flight exits by itself once its work is done, and exits cleanly when the app
// calls `process.exit()` mid-sync; nothing recorded is lost. Each scenario is a real child
// `node` process (`runScript`) against a real `headway serve` on 127.0.0.1, run 10 times. A
// store opened from two `worker_threads` on one file keeps every item at its highest progress.
// Listener and `close` semantics are checked in this process.

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import headway from "headway";
import { runScript, serve, temporaryFolder } from "./support.mjs";

const { HeadwayError, Status, Store } = headway;

const RUNS = 10;
/** A script that has not exited by then hangs: the test fails. */
const HANG_MS = 30_000;
/** Each scenario has its own learner, so the server's answers belong to one test. */
const LEARNERS = ["listener", "background", "finished", "awaited", "unawaited", "exiting", "workers", "closing"];
const LEARNER = "asha";
const COURSE = "do_course";
const BATCH = "0130";
const LEAVES = Array.from({ length: 8 }, (_, i) => `do_${i + 1}`);

let folder;
let server;

before(async () => {
  folder = temporaryFolder("headway-process-life-");
  server = await serve();
  for (const learner of [LEARNER, ...LEARNERS]) await server.scene(learner, COURSE, BATCH, LEAVES);
});

after(() => {
  server?.stop();
  folder?.remove();
});

/** A fresh store file path in the test's folder. */
let files = 0;
function storeFile(name) {
  files += 1;
  return path.join(folder.folder, `${name}-${files}.db`);
}

/** The update for `contentId` at `progress`, as the scripts record them. */
function update(contentId, progress) {
  const status = progress === 100 ? Status.Completed : Status.InProgress;
  return { userId: LEARNER, courseId: COURSE, batchId: BATCH, contentId, status, progress };
}

/** What the server holds for `learner`: content id to progress. */
async function serverProgress(learner) {
  const states = await server.admin(`/admin/states/${learner}`);
  return new Map(states.map((s) => [s.contentId, s.progress]));
}

/** Sets the server's injected faults (replacing any): every API request waits `delayMs`. */
async function delayRequests(delayMs) {
  await server.admin("/admin/faults", { delayMs });
}

/**
 * Runs `body` in a child node process, after a prelude that loads the package as `Store` and
 * `Status` and defines `FILE`, `SERVER` ({ baseUrl }), `update(contentId, progress)` and `ITEMS`.
 * Asserts that the process exited by itself (or through `process.exit`) with code 0, no signal
 * and no crash on stderr; answers its stdout.
 */
async function runClean(body, { file, learner, items = [] }) {
  const prelude = `
    "use strict";
    const { Store, Status, HeadwayError } = require(process.env.HEADWAY_PACKAGE);
    const FILE = ${JSON.stringify(file)};
    const SERVER = { baseUrl: ${JSON.stringify(server.url)}, userToken: "token" };
    const ITEMS = ${JSON.stringify(items)};
    const LEARNER = ${JSON.stringify(learner)};
    const update = (contentId, progress) => ({ userId: LEARNER,
      courseId: ${JSON.stringify(COURSE)}, batchId: ${JSON.stringify(BATCH)}, contentId,
      status: progress === 100 ? Status.Completed : Status.InProgress, progress });
  `;
  const started = Date.now();
  const { code, signal, stdout, stderr } = await runScript(prelude + body, { timeoutMs: HANG_MS });
  const context = `code ${code}, signal ${signal}, after ${Date.now() - started} ms\nstdout: ${stdout}\nstderr: ${stderr}`;
  assert.equal(signal, null, context);
  assert.equal(code, 0, context);
  assert.doesNotMatch(stderr, /FATAL|panicked|Segmentation|Abort|napi_fatal|uncaught/i, context);
  return stdout;
}

/** Every recorded item is in the store file, at least at the recorded progress. */
function assertAllRecorded(file, learner, items) {
  const store = Store.open(file);
  try {
    const held = new Map(store.state(learner).map((i) => [i.contentId, i.progress]));
    for (const [contentId, progress] of items) {
      assert.ok((held.get(contentId) ?? -1) >= progress, `${contentId} at ${progress} lost: ${[...held]}`);
    }
    return store.pending(learner).map((i) => i.contentId);
  } finally {
    store.close();
  }
}

describe("a process exits by itself when its work is done", () => {
  test("a script with a subscribed listener exits with code 0 after recording (10 runs)", async () => {
    for (let run = 0; run < RUNS; run++) {
      const file = storeFile("listener");
      const items = [["do_1", 10 + run], ["do_2", 100]];
      const stdout = await runClean(
        `
        const store = Store.open(FILE);
        store.subscribe((event) => console.log("event", event.type));
        for (const [id, progress] of ITEMS) console.log("raised", store.record(update(id, progress)));
        `,
        { file, learner: "listener", items },
      );
      assert.equal(stdout.match(/raised true/g)?.length, 2, stdout);
      assertAllRecorded(file, "listener", items);
    }
  });

  test("a script with a background sync exits with code 0 after recording (10 runs)", async () => {
    for (let run = 0; run < RUNS; run++) {
      const file = storeFile("background");
      const items = [[`do_${(run % 8) + 1}`, 20 + run]];
      await runClean(
        `
        const store = Store.open(FILE);
        store.startBackgroundSync(LEARNER, SERVER, { debounceMs: ${run * 20} });
        for (const [id, progress] of ITEMS) store.record(update(id, progress));
        `,
        { file, learner: "background", items },
      );
      // Whether the background sync reached the server before the end is not promised;
      // the item is on the device either way (pending or acknowledged).
      assertAllRecorded(file, "background", items);
    }
  });

  test("a background sync that reported SyncFinished before the script ended left the items on the server (10 runs)", async () => {
    for (let run = 0; run < RUNS; run++) {
      const file = storeFile("background-finished");
      const progress = 10 + run;
      const items = [["do_1", progress], ["do_2", progress]];
      // Each run asks for a higher progress than the last, so the server's answer proves
      // this run's sync.
      const stdout = await runClean(
        `
        const store = Store.open(FILE);
        const deadline = setTimeout(() => { console.log("no SyncFinished"); process.exit(3); }, 20000);
        const unsubscribe = store.subscribe((event) => {
          // The first sync may leave before the second record: wait for the one after which
          // nothing is pending.
          if (event.type === "SyncFinished" && store.pending(LEARNER).length === 0) {
            console.log("finished", JSON.stringify(event.report));
            unsubscribe();
            clearTimeout(deadline);
          }
        });
        store.startBackgroundSync(LEARNER, SERVER, { debounceMs: 10 });
        for (const [id, progress] of ITEMS) store.record(update(id, progress));
        `,
        { file, learner: "finished", items },
      );
      assert.match(stdout, /finished/, stdout);
      const held = await serverProgress("finished");
      for (const [contentId, at] of items) assert.equal(held.get(contentId), at, `${contentId}: ${[...held]}`);
      assert.deepEqual(assertAllRecorded(file, "finished", items), [], "acknowledged items are no longer pending");
    }
  });
});

describe("a process with a sync in flight", () => {
  before(() => delayRequests(300));
  after(() => delayRequests(0));

  test("a script whose sync is awaited exits with code 0 once it settles; the server holds the items (10 runs)", async () => {
    for (let run = 0; run < RUNS; run++) {
      const file = storeFile("awaited");
      const items = [["do_3", 30 + run], ["do_4", 30 + run]];
      const stdout = await runClean(
        `
        (async () => {
          const store = Store.open(FILE);
          for (const [id, progress] of ITEMS) store.record(update(id, progress));
          const report = await store.sync(LEARNER, SERVER);
          console.log("report", JSON.stringify(report));
        })();
        `,
        { file, learner: "awaited", items },
      );
      assert.match(stdout, /report .*"acknowledged":2/, stdout);
      const held = await serverProgress("awaited");
      for (const [contentId, at] of items) assert.equal(held.get(contentId), at);
      assert.deepEqual(assertAllRecorded(file, "awaited", items), []);
    }
  });

  test("a script that starts a sync and never awaits it stays alive until it settles; the server holds the items (10 runs)", async () => {
    for (let run = 0; run < RUNS; run++) {
      const file = storeFile("not-awaited");
      const items = [["do_5", 30 + run], ["do_6", 30 + run]];
      const stdout = await runClean(
        `
        const store = Store.open(FILE);
        for (const [id, progress] of ITEMS) store.record(update(id, progress));
        store.sync(LEARNER, SERVER); // neither awaited nor handled
        const ended = Date.now();
        process.on("exit", () => console.log("lived", Date.now() - ended));
        `,
        { file, learner: "unawaited", items },
      );
      // Every request waits 300 ms: the process lived through the sync instead of exiting
      // at the end of the script.
      const lived = Number(stdout.match(/lived (\d+)/)?.[1]);
      assert.ok(lived >= 300, `the process exited ${lived} ms after the script ended`);
      const held = await serverProgress("unawaited");
      for (const [contentId, at] of items) assert.equal(held.get(contentId), at, `${contentId}: ${[...held]}`);
      assert.deepEqual(assertAllRecorded(file, "unawaited", items), []);
    }
  });

  test("process.exit(0) while a sync is in flight exits with code 0, no signal, and loses nothing (10 runs)", async () => {
    const outcomes = [];
    for (let run = 0; run < RUNS; run++) {
      const file = storeFile("exit-mid-sync");
      const items = LEAVES.map((id, i) => [id, 50 + run + i]);
      // Run 0 exits on the next tick; later runs after 0 to 1,200 ms: before, during and
      // after the 300 ms requests.
      const exit = run === 0 ? "process.nextTick(() => process.exit(0));" : `setTimeout(() => process.exit(0), ${(run - 1) * 150});`;
      await runClean(
        `
        const store = Store.open(FILE);
        store.subscribe(() => {});
        store.startBackgroundSync(LEARNER, SERVER, { debounceMs: 0 });
        for (const [id, progress] of ITEMS) store.record(update(id, progress));
        store.sync(LEARNER, SERVER).then(() => console.log("settled"), (e) => console.log("rejected", e.code));
        ${exit}
        `,
        { file, learner: "exiting", items },
      );
      const pending = assertAllRecorded(file, "exiting", items);
      const held = await serverProgress("exiting");
      // Every item is pending on the device or held by the server at its progress.
      for (const [contentId, progress] of items) {
        assert.ok(
          pending.includes(contentId) || (held.get(contentId) ?? -1) >= progress,
          `${contentId} at ${progress} is neither pending nor on the server`,
        );
      }
      outcomes.push(pending.length);
    }
    // Not an assertion of timing, a note: how many stayed pending per run.
    console.log(`pending after process.exit per run: ${outcomes.join(" ")}`);
  });
});

describe("a sync beside the background sync of the same learner", () => {
  test("reports as retrying only items that stay pending, and never rejects when nothing does (20 rounds)", async () => {
    // Both push the same first writes; Sunbird stores a first write at progress 0, so each
    // sees HeldLower and plans a second round, which the other's confirmation can pre-empt.
    const wrong = [];
    for (let round = 0; round < 20; round++) {
      const learner = `beside-${round}`;
      await server.scene(learner, COURSE, BATCH, LEAVES);
      const store = Store.openInMemory();
      const target = { baseUrl: server.url, userToken: "token" };
      store.startBackgroundSync(learner, target, { debounceMs: 0 });
      for (let i = 0; i < 25; i++) store.record({ ...update(`do_b${i}`, 40), userId: learner });
      try {
        const report = await store.sync(learner, target);
        const pending = store.pending(learner).length;
        if (report.retrying > pending) wrong.push(`round ${round}: retrying ${report.retrying}, pending ${pending}`);
      } catch (e) {
        const pending = store.pending(learner).length;
        if (pending === 0) wrong.push(`round ${round}: ${e.code} (${e.message}) with nothing pending`);
      } finally {
        store.close();
      }
    }
    assert.deepEqual(wrong, []);
  });
});

describe("a process ended from inside headway's callbacks", () => {
  test("process.exit(0) from inside a token provider, mid-sync, exits with code 0 and loses nothing (10 runs)", async () => {
    for (let run = 0; run < RUNS; run++) {
      const file = storeFile("exit-in-provider");
      const items = [["do_1", 10 + run], ["do_2", 10 + run]];
      // Even runs exit while the provider is being called; odd runs after it answered.
      const provider = run % 2 === 0 ? "() => process.exit(0)" : 'async () => { setImmediate(() => process.exit(0)); return "token"; }';
      await runClean(
        `
        const store = Store.open(FILE);
        for (const [id, progress] of ITEMS) store.record(update(id, progress));
        store.sync(LEARNER, { baseUrl: SERVER.baseUrl, tokenProvider: ${provider} });
        `,
        { file, learner: "exiting", items },
      );
      assertAllRecorded(file, "exiting", items);
    }
  });

  test("process.exit(0) from inside a listener hearing SyncFinished exits with code 0 (10 runs)", async () => {
    for (let run = 0; run < RUNS; run++) {
      const file = storeFile("exit-in-listener");
      const items = [["do_3", 10 + run]];
      const stdout = await runClean(
        `
        const store = Store.open(FILE);
        store.subscribe((event) => {
          if (event.type === "SyncFinished") { console.log("exiting"); process.exit(0); }
        });
        store.startBackgroundSync(LEARNER, SERVER, { debounceMs: 0 });
        for (const [id, progress] of ITEMS) store.record(update(id, progress));
        setTimeout(() => { console.log("no SyncFinished"); process.exit(3); }, 20000);
        `,
        { file, learner: "exiting", items },
      );
      assert.match(stdout, /exiting/);
      assertAllRecorded(file, "exiting", items);
    }
  });

  test("a worker terminated while its sync, background sync and listener run ends cleanly, and so does the process (10 runs)", async () => {
    let total = 0;
    for (let run = 0; run < RUNS; run++) {
      const file = storeFile("terminated-worker");
      const stdout = await runClean(
        `
        const { Worker } = require("node:worker_threads");
        const worker = new Worker(\`
          const { workerData } = require("node:worker_threads");
          const { Store } = require(workerData.pkg);
          const store = Store.open(workerData.file);
          store.subscribe(() => {});
          store.startBackgroundSync(workerData.learner, workerData.server, { debounceMs: 0 });
          for (let i = 0; i < 100; i++) {
            store.record({ userId: workerData.learner, courseId: "${COURSE}", batchId: "${BATCH}", contentId: "do_w" + i, status: 1, progress: 40 });
          }
          // Beside the background sync it may fail (HeldLower, see the report); not the point here.
          store.sync(workerData.learner, workerData.server).catch(() => {});
        \`, { eval: true, workerData: { pkg: process.env.HEADWAY_PACKAGE, file: FILE, learner: LEARNER, server: SERVER } });
        setTimeout(() => worker.terminate().then((code) => console.log("terminated", code)), ${run * 30});
        `,
        { file, learner: "exiting" },
      );
      // 1 when stopped mid-work, 0 when stopped before its script began, undefined when its
      // work was done and it had exited by itself.
      assert.match(stdout, /terminated (0|1|undefined)\n/, stdout);
      // Whatever the worker recorded before it was stopped is intact and readable.
      const store = Store.open(file);
      const recorded = store.state("exiting");
      store.close();
      assert.ok(recorded.every((item) => item.progress === 40), JSON.stringify(recorded.slice(0, 3)));
      total += recorded.length;
    }
    assert.ok(total > 0, "no run got as far as recording: the worker was never stopped mid-work");
  });
});

describe("two worker threads on one store file", () => {
  test("four worker threads opening the same new store file at the same instant all open it (30 rounds)", async () => {
    // Each round: a fresh file; the workers wait on a shared gate, then all call Store.open.
    const stdout = await runClean(
      `
      const { Worker } = require("node:worker_threads");
      const path = require("node:path");
      const source = \`
        const { workerData, parentPort } = require("node:worker_threads");
        const { Store } = require(workerData.pkg);
        const gate = new Int32Array(workerData.gate);
        Atomics.add(gate, 1, 1);
        Atomics.wait(gate, 0, 0);
        try {
          Store.open(workerData.file).close();
          parentPort.postMessage("opened");
        } catch (e) {
          parentPort.postMessage(e.code + ": " + e.message);
        }
      \`;
      (async () => {
        const answers = {};
        for (let round = 0; round < 30; round++) {
          const file = FILE + "-" + round + ".db";
          const gate = new SharedArrayBuffer(8);
          const waiting = new Int32Array(gate);
          const workers = Array.from({ length: 4 }, () =>
            new Worker(source, { eval: true, workerData: { pkg: process.env.HEADWAY_PACKAGE, file, gate } }));
          const answered = workers.map((w) => new Promise((resolve) => w.once("message", resolve)));
          while (Atomics.load(waiting, 1) < 4) await new Promise((resolve) => setTimeout(resolve, 1));
          Atomics.store(waiting, 0, 1);
          Atomics.notify(waiting, 0);
          for (const answer of await Promise.all(answered)) answers[answer] = (answers[answer] ?? 0) + 1;
          await Promise.all(workers.map((w) => w.terminate()));
        }
        console.log("answers", JSON.stringify(answers));
      })();
      `,
      { file: storeFile("opened-at-once"), learner: "workers" },
    );
    assert.deepEqual(JSON.parse(stdout.match(/answers (.*)/)[1]), { opened: 120 });
  });

  test("both record concurrently; the main thread then sees every item at the highest progress (5 runs)", async () => {
    for (let run = 0; run < 5; run++) await twoWorkersOnOneFile();
  });
});

async function twoWorkersOnOneFile() {
  {
    const file = storeFile("workers");
    const stdout = await runClean(
      `
      const { Worker } = require("node:worker_threads");
      const worker = (name, start) => new Worker(\`
        const { workerData, parentPort } = require("node:worker_threads");
        const { Store, Status } = require(workerData.pkg);
        const store = Store.open(workerData.file);
        const base = { userId: workerData.learner, courseId: "${COURSE}", batchId: "${BATCH}", status: Status.InProgress };
        for (let i = 0; i < 50; i++) {
          // Its own items, and the shared item at interleaved progress (one worker odd, one even).
          store.record({ ...base, contentId: workerData.name + "_" + i, progress: i + 1 });
          store.record({ ...base, contentId: "do_shared", progress: workerData.start + 2 * i });
        }
        store.close();
        parentPort.postMessage("done");
      \`, { eval: true, workerData: { pkg: process.env.HEADWAY_PACKAGE, file: FILE, learner: LEARNER, name, start } });
      // The file exists before the workers start: creating it from two threads at once is
      // the test above (a race of its own).
      Store.open(FILE).close();
      const ended = (w) => new Promise((resolve, reject) => { w.on("error", reject); w.on("exit", resolve); });
      Promise.all([ended(worker("a", 0)), ended(worker("b", 1))]).then((codes) => {
        console.log("exits", codes.join(","));
        const store = Store.open(FILE);
        const items = store.state(LEARNER);
        console.log("items", JSON.stringify(items.map((i) => [i.contentId, i.progress])));
      }, (error) => { console.log("worker failed", error); process.exitCode = 1; });
      `,
      { file, learner: "workers" },
    );
    assert.match(stdout, /exits 0,0/, stdout);
    const items = new Map(JSON.parse(stdout.match(/items (.*)/)[1]));
    for (const name of ["a", "b"]) {
      for (let i = 0; i < 50; i++) assert.equal(items.get(`${name}_${i}`), i + 1, `${name}_${i}`);
    }
    // a recorded 0, 2, .., 98; b 1, 3, .., 99: the max wins, whichever order they landed in.
    assert.equal(items.get("do_shared"), 99);
    assert.equal(items.size, 101);
  }
}

describe("listeners and close", () => {
  test("a listener that throws still gets the next events and does not crash the process; none after unsubscribe", async () => {
    const store = Store.openInMemory();
    const warnings = [];
    const onWarning = (warning) => warnings.push(warning);
    process.on("warning", onWarning);
    const heard = [];
    const unsubscribe = store.subscribe((event) => {
      if (event.type !== "ContentStateChanged") return;
      heard.push(event.after.contentId);
      throw new Error(`listener failed on ${event.after.contentId}`);
    });
    try {
      for (const id of ["do_1", "do_2", "do_3"]) store.record(update(id, 10));
      for (let waited = 0; heard.length < 3 && waited < 5_000; waited += 20) await sleep(20);
      assert.deepEqual(heard, ["do_1", "do_2", "do_3"]);

      unsubscribe();
      store.record(update("do_4", 10));
      store.record(update("do_1", 20));
      await sleep(500); // ten times the delivery thread's poll
      assert.deepEqual(heard, ["do_1", "do_2", "do_3"], "an event arrived after unsubscribe");
      unsubscribe(); // twice is fine
    } finally {
      process.off("warning", onWarning);
      store.close();
    }
  });

  test("a listener's error is reported as a HeadwayListenerWarning, thrown Error or not", async () => {
    const store = Store.openInMemory();
    const warnings = [];
    const onWarning = (warning) => warnings.push(warning);
    process.on("warning", onWarning);
    let calls = 0;
    store.subscribe(() => {
      calls += 1;
      if (calls === 1) throw new Error("an Error thrown by the listener");
      throw "a string thrown by the listener";
    });
    try {
      store.record(update("do_1", 10));
      store.record(update("do_2", 10));
      for (let waited = 0; warnings.length < 2 && waited < 5_000; waited += 20) await sleep(20);
      assert.deepEqual(
        warnings.map((w) => [w.name, w.message]),
        [
          ["HeadwayListenerWarning", "an Error thrown by the listener"],
          ["HeadwayListenerWarning", "a string thrown by the listener"],
        ],
      );
    } finally {
      process.off("warning", onWarning);
      store.close();
    }
  });

  test("close right after sync() lets that sync settle with its report and keeps its result (10 runs)", async () => {
    // The doc: "A sync in flight finishes first (its Promise settles)". The app's usual
    // shutdown: start a last sync, close the store, await the sync.
    await delayRequests(50);
    const outcomes = [];
    try {
      for (let run = 0; run < RUNS; run++) {
        const file = storeFile("close-mid-sync");
        const store = Store.open(file);
        store.record({ ...update("do_1", 60 + run), userId: "closing" });
        const syncing = store.sync("closing", { baseUrl: server.url, userToken: "token" });
        store.close();
        outcomes.push(await syncing.then((report) => `acknowledged ${report.acknowledged}`, (e) => `${e.code}: ${e.message}`));
        const again = Store.open(file);
        const pending = again.pending("closing").length;
        again.close();
        if (outcomes.at(-1) === "acknowledged 1") {
          assert.equal(pending, 0, "the acknowledgement of the settled sync was kept");
          assert.equal((await serverProgress("closing")).get("do_1"), 60 + run);
        } else {
          assert.equal(pending, 1, "a sync that failed left its item pending");
        }
      }
    } finally {
      await delayRequests(0);
    }
    assert.deepEqual(outcomes.filter((o) => o !== "acknowledged 1"), [], outcomes.join("; "));
  });

  test("close twice is fine and every later call throws STORE_UNAVAILABLE", async () => {
    const store = Store.open(storeFile("closed"));
    store.record(update("do_1", 10));
    store.close();
    store.close();
    const closed = { code: "STORE_UNAVAILABLE" };
    const calls = {
      record: () => store.record(update("do_1", 20)),
      recordBatch: () => store.recordBatch([update("do_1", 20)]),
      state: () => store.state(LEARNER),
      pending: () => store.pending(LEARNER),
      courses: () => store.courses(LEARNER),
      rejected: () => store.rejected(LEARNER),
      resendRejected: () => store.resendRejected(LEARNER),
      deviceId: () => store.deviceId(),
      recordPlayerEvent: () => store.recordPlayerEvent("{}", { userId: LEARNER, courseId: COURSE, batchId: BATCH }),
      subscribe: () => store.subscribe(() => {}),
      peerExport: () => store.peerExport(LEARNER),
      peerImport: () => store.peerImport(LEARNER, Buffer.from("x")),
      startBackgroundSync: () => store.startBackgroundSync(LEARNER, { baseUrl: server.url }),
      networkUp: () => store.networkUp(),
      appResumed: () => store.appResumed(),
      stopBackgroundSync: () => store.stopBackgroundSync(),
    };
    for (const [name, call] of Object.entries(calls)) {
      assert.throws(call, (e) => e instanceof HeadwayError && e.code === closed.code, name);
    }
    for (const [name, call] of Object.entries({
      sync: () => store.sync(LEARNER, { baseUrl: server.url }),
      refreshCourses: () => store.refreshCourses(LEARNER, { baseUrl: server.url }),
    })) {
      let promise;
      assert.doesNotThrow(() => (promise = call()), `${name} threw instead of rejecting`);
      await assert.rejects(promise, (e) => e instanceof HeadwayError && e.code === closed.code, name);
    }
  });
});
