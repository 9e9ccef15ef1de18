// The package's API against `headway serve`: what each call answers, the events' shapes and
// order, sealed peer files, rejections, the token provider's two questions, the background
// sync. Hostile input is test/hostile.test.mjs; the process's life is test/process-life.test.mjs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import headway from "../index.js";
import { HEADWAY, serve, temporaryFolder } from "./support.mjs";

const { HeadwayError, Status, Store } = headway;
const asha = { userId: "asha", courseId: "do_course", batchId: "0130" };
const update = (contentId, status, progress, more = {}) => ({ ...asha, contentId, status, progress, ...more });

/** Resolves with the first event `accept` takes, from now on. */
function nextEvent(store, accept, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no such event arrived")), timeoutMs);
    const unsubscribe = store.subscribe((event) => {
      if (accept(event)) {
        clearTimeout(timer);
        unsubscribe();
        resolve(event);
      }
    });
  });
}

let folder;
before(() => (folder = temporaryFolder()));
after(() => folder.remove());
const file = (name) => path.join(folder.folder, name);

describe("local calls", () => {
  test("recordBatch counts what it raised and records all or nothing", () => {
    const store = Store.openInMemory();
    assert.equal(store.recordBatch([update("do_1", 1, 40), update("do_2", 2, 100)]), 2);
    // A stale update (lower, and consumed an hour ago) raises nothing; the fresh one counts.
    const anHourAgo = Date.now() - 3_600_000;
    assert.equal(store.recordBatch([update("do_1", 1, 10, { consumedAtMs: anHourAgo }), update("do_3", 1, 5)]), 1);
    const before = store.state("asha");
    assert.throws(
      () => store.recordBatch([update("do_4", 1, 5), update("do_5", 1, 500)]),
      (e) => e instanceof HeadwayError && e.code === "INVALID_INPUT" && /update 1/.test(e.message),
    );
    assert.deepEqual(store.state("asha"), before);
    assert.equal(store.recordBatch([]), 0);
  });

  test("state reads one course or all, with null for times not known", () => {
    const store = Store.openInMemory();
    store.record(update("do_1", Status.InProgress, 40));
    store.record({ ...update("do_9", Status.Completed, 100), courseId: "do_other" });
    assert.deepEqual(store.state("asha").map((i) => i.contentId), ["do_1", "do_9"]);
    const [item] = store.state("asha", "do_course");
    assert.equal(item.contentId, "do_1");
    assert.equal(item.status, Status.InProgress);
    assert.equal(item.lastCompletedTimeMs, null);
    assert.equal(typeof item.lastAccessTimeMs, "number");
    assert.deepEqual(store.state("nobody"), []);
    assert.deepEqual(store.pending("asha").map((i) => i.contentId), ["do_1", "do_9"]);
  });

  test("two stores on one file see each other's records", () => {
    const one = Store.open(file("shared.db"));
    const two = Store.open(file("shared.db"), { durability: "processCrash" });
    one.record(update("do_1", 1, 30));
    two.record(update("do_1", 1, 60));
    assert.equal(one.state("asha")[0].progress, 60);
    one.close();
    two.close();
  });

  test("events arrive in commit order on the JavaScript thread, after the call that caused them", async () => {
    const store = Store.openInMemory();
    const seen = [];
    let inListener = false;
    const done = new Promise((resolve) => {
      store.subscribe((event) => {
        assert.equal(inListener, false, "a listener is never re-entered");
        inListener = true;
        seen.push([event.type, event.after?.progress, event.before?.progress ?? null]);
        // A change the listener makes arrives after it returns.
        if (event.after?.progress === 10) store.record(update("do_1", 1, 20));
        inListener = false;
        if (event.after?.progress === 30) resolve();
      });
    });
    // A listener does not keep the process alive (its handle is unref'd): this ref'd timer does.
    const alive = setTimeout(() => {}, 20_000);
    store.record(update("do_1", 1, 10));
    assert.deepEqual(seen, [], "nothing is delivered during record");
    setTimeout(() => store.record(update("do_1", 1, 30)), 100);
    await done;
    clearTimeout(alive);
    assert.deepEqual(seen, [
      ["ContentStateChanged", 10, null],
      ["ContentStateChanged", 20, 10],
      ["ContentStateChanged", 30, 20],
    ]);
    store.close();
  });

  test("a sealed peer file opens only with its pairing key", () => {
    const key = file("asha.key");
    const pair = spawnSync(HEADWAY, ["peer", "pair", "--db", file("pair.db"), "--user", "asha", "--out", key, "-q"]);
    assert.equal(pair.status, 0, String(pair.stderr));
    const phone = Store.openInMemory();
    const school = Store.openInMemory();
    phone.record(update("do_1", 2, 100));
    const sealed = phone.peerExport("asha", null, key);
    assert.ok(Buffer.isBuffer(sealed));
    assert.throws(() => school.peerImport("asha", sealed), (e) => e.code === "NOT_PAIRED");
    assert.throws(() => school.peerImport("asha", sealed, file("missing.key")), (e) => e.code === "INVALID_INPUT");
    assert.deepEqual(school.state("asha"), []);
    assert.equal(school.peerImport("asha", sealed, key), 1);
    assert.deepEqual(school.state("asha"), phone.state("asha"));
    // Only what the school lacks, once it has met the phone.
    const again = phone.peerExport("asha", school.deviceId());
    assert.equal(school.peerImport("asha", again), 0);
  });
});

describe("against headway serve", () => {
  let server;
  before(async () => {
    server = await serve("--token", "good=asha", "--progress-lag-ms", "0");
    await server.scene("asha");
    await server.admin("/admin/course", { courseId: "do_ended", leafNodes: ["do_x"] });
    await server.admin("/admin/batch", { batchId: "0999", courseId: "do_ended", status: 2 });
    await server.admin("/admin/enrol", { userId: "asha", courseId: "do_ended", batchId: "0999" });
  });
  after(() => server.stop());

  test("the token provider is asked per learner, and again with refreshed=true after a refusal", async () => {
    const store = Store.openInMemory();
    store.record(update("do_1", 2, 100));
    const asked = [];
    const report = await store.sync("asha", {
      baseUrl: server.url,
      tokenProvider: async (userId, refreshed) => {
        asked.push([userId, refreshed]);
        return refreshed ? "good" : "stale";
      },
    });
    assert.deepEqual(asked.slice(0, 2), [["asha", false], ["asha", true]]);
    assert.equal(report.acknowledged, 1);
    assert.deepEqual(store.pending("asha"), []);
  });

  test("a token provider that never answers fails the sync after tokenTimeoutMs, nothing lost", async () => {
    const store = Store.openInMemory();
    store.record(update("do_3", 1, 20));
    const started = Date.now();
    await assert.rejects(
      store.sync("asha", { baseUrl: server.url, tokenProvider: () => new Promise(() => {}), tokenTimeoutMs: 200 }),
      (e) => e instanceof HeadwayError && e.code === "SERVER_UNAVAILABLE" && /did not answer within 200 ms/.test(e.message),
    );
    assert.ok(Date.now() - started < 10_000);
    assert.equal(store.pending("asha").length, 1);
  });

  test("a refused token rejects with CREDENTIALS_REFUSED and keeps everything pending", async () => {
    const store = Store.openInMemory();
    store.record(update("do_2", 1, 50));
    await assert.rejects(
      store.sync("asha", { baseUrl: server.url, userToken: "stale" }),
      (e) => e instanceof HeadwayError && e.code === "CREDENTIALS_REFUSED",
    );
    assert.equal(store.pending("asha").length, 1);
  });

  test("an ended batch's item is rejected, reported, and sent again after resendRejected", async () => {
    const store = Store.openInMemory();
    store.record({ ...update("do_x", 2, 100), courseId: "do_ended", batchId: "0999" });
    const report = await store.sync("asha", { baseUrl: server.url, userToken: "good" });
    assert.equal(report.rejected.length, 1);
    assert.equal(report.rejected[0].item.contentId, "do_x");
    assert.match(report.rejected[0].reason, /NOT_A_ON_GOING_BATCH/);
    assert.equal(store.rejected("asha").length, 1);
    assert.deepEqual(store.pending("asha"), []);
    assert.equal(store.resendRejected("asha"), 1);
    assert.equal(store.pending("asha").length, 1);
  });

  test("refreshCourses caches the list with its leaves, and courses answers it offline", async () => {
    const store = Store.openInMemory();
    assert.deepEqual(store.courses("asha"), []);
    const courses = await store.refreshCourses("asha", { baseUrl: server.url, userToken: "good" });
    const course = courses.find((c) => c.courseId === "do_course");
    assert.deepEqual(course.leafNodes, ["do_1", "do_2", "do_3", "do_4"]);
    assert.equal(course.leafNodesCount, 4);
    assert.equal(typeof JSON.parse(course.extraJson), "object");
    const percentage = nextEvent(store, (e) => e.type === "CourseProgressChanged");
    store.record(update("do_3", 2, 100));
    assert.equal((await percentage).newPercentage, store.courses("asha").find((c) => c.courseId === "do_course").completionPercentage);
  });

  test("the background sync sends a record by itself and reports it", async () => {
    const store = Store.openInMemory();
    store.startBackgroundSync("asha", { baseUrl: server.url, userToken: "good" }, { debounceMs: 20 });
    const finished = nextEvent(store, (e) => e.type === "SyncFinished" && e.report.acknowledged > 0);
    store.record(update("do_4", 1, 70));
    await finished;
    assert.deepEqual(store.pending("asha"), []);
    store.networkUp();
    store.appResumed();
    store.stopBackgroundSync();
    store.stopBackgroundSync();
    store.close();
    assert.throws(() => store.networkUp(), (e) => e.code === "STORE_UNAVAILABLE");
  });
});
