// The boundary under attack (issue 19, item 1): what a hostile or careless app, peer or server
// hands the Node package. Every refusal is a `HeadwayError` with a typed `code`, and changes
// nothing: the store's `state`, `pending`, `rejected` and `courses` are identical before and
// after. Real parts throughout: a store file, `headway serve` on 127.0.0.1, child processes for
// what could hang.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import headway from "headway";
import { runScript, serve, temporaryFolder } from "./support.mjs";

const { HeadwayError, Status, Store } = headway;

const LEARNER = "asha";
const OTHER = "ravi";
const COURSE = "do_course";
const BATCH = "0130";
const MB = "x".repeat(1 << 20);

let folder;
let server;
/** The store under attack, a file holding two items of `LEARNER` (one pending). */
let store;

/** A valid update, with `fields` replacing or adding fields. */
function update(fields = {}) {
  return {
    userId: LEARNER,
    courseId: COURSE,
    batchId: BATCH,
    contentId: "do_1",
    status: Status.InProgress,
    progress: 40,
    ...fields,
  };
}

/** Everything the app can read about the learners the attacks aim at. */
function snapshot(target = store) {
  return JSON.stringify(
    [LEARNER, OTHER].map((user) => ({
      state: target.state(user),
      pending: target.pending(user),
      rejected: target.rejected(user),
      courses: target.courses(user),
    })),
  );
}

/** `call` throws a `HeadwayError` with `code` (and a message matching `message`), changing nothing. */
function refused(code, call, message = /./, what = String(call)) {
  const before = snapshot();
  assert.throws(
    call,
    (e) => {
      assert.ok(e instanceof HeadwayError, `${what}: not a HeadwayError: ${e}`);
      assert.equal(e.code, code, `${what}: ${e.message}`);
      assert.match(e.message, message, what);
      return true;
    },
    what,
  );
  assert.equal(snapshot(), before, `${what} changed the store`);
}

/** As `refused`, for a call that returns a Promise: it rejects, never throws. */
async function rejected(code, call, message = /./, what = String(call)) {
  const before = snapshot();
  let promise;
  assert.doesNotThrow(() => {
    promise = call();
  }, `${what} threw instead of returning a rejected Promise`);
  await assert.rejects(
    promise,
    (e) => {
      assert.ok(e instanceof HeadwayError, `${what}: not a HeadwayError: ${e}`);
      assert.equal(e.code, code, `${what}: ${e.message}`);
      assert.match(e.message, message, what);
      return true;
    },
    what,
  );
  assert.equal(snapshot(), before, `${what} changed the store`);
}

before(async () => {
  folder = temporaryFolder("headway-hostile-");
  server = await serve();
  await server.scene(LEARNER);
  store = Store.open(path.join(folder.folder, "attacked.db"));
  store.record(update({ contentId: "do_1", progress: 40 }));
  store.record(update({ contentId: "do_2", status: Status.Completed, progress: 100 }));
  await store.sync(LEARNER, { baseUrl: server.url, userToken: "token" });
  store.record(update({ contentId: "do_3", progress: 10 })); // pending
  assert.equal(store.pending(LEARNER).length, 1);
});

after(() => {
  store?.close();
  server?.stop();
  folder?.remove();
});

describe("a hostile app's updates", () => {
  const wrong = [
    ["progress", "40"],
    ["progress", NaN],
    ["progress", Infinity],
    ["progress", -Infinity],
    ["progress", -1],
    ["progress", 101],
    ["progress", 1e300],
    ["progress", 40.5],
    ["progress", null],
    ["progress", true],
    ["progress", 40n],
    ["progress", { valueOf: () => 40 }],
    ["status", "2"],
    ["status", 3],
    ["status", -1],
    ["status", 1.5],
    ["status", NaN],
    ["status", null],
    ["consumedAtMs", NaN],
    ["consumedAtMs", "now"],
    ["consumedAtMs", 0],
    ["consumedAtMs", -1],
    ["consumedAtMs", 1e300],
    ["consumedAtMs", Date.now() + 2 * 86_400_000],
  ];
  for (const field of ["userId", "courseId", "batchId", "contentId"]) {
    wrong.push(
      [field, undefined],
      [field, ""],
      [field, "   "],
      [field, " padded"],
      [field, "padded "],
      [field, "line\nbreak"],
      [field, "nul\u0000byte"],
      [field, 42],
      [field, null],
      [field, ["do_1"]],
      [field, "x".repeat(257)],
      [field, MB],
    );
  }

  test("a wrong value in any field of an update throws INVALID_INPUT and records nothing", () => {
    for (const [field, value] of wrong) {
      const bad = update({ contentId: "do_4" });
      if (value === undefined) delete bad[field];
      else bad[field] = value;
      const what = `${field} = ${typeof value === "string" ? JSON.stringify(value.slice(0, 20)) : String(value)}`;
      refused("INVALID_INPUT", () => store.record(bad), /./, `record: ${what}`);
      refused("INVALID_INPUT", () => store.recordBatch([bad]), /./, `recordBatch: ${what}`);
    }
  });

  test("an update that is not an object throws INVALID_INPUT", () => {
    for (const value of [undefined, null, 42, "do_1", [], () => {}]) {
      refused("INVALID_INPUT", () => store.record(value), /./, `record(${String(value)})`);
    }
  });

  test("a completed status below 100 and an id with a space inside are valid input", () => {
    // Not refusals: the library's rules (an inner space is a valid id; completed means 100).
    const fresh = Store.openInMemory();
    assert.equal(fresh.record(update({ userId: "a learner", contentId: "do 1" })), true);
    assert.equal(fresh.record(update({ status: Status.Completed, progress: 50 })), true);
    assert.deepEqual(
      fresh.state(LEARNER).map((i) => [i.status, i.progress]),
      [[Status.Completed, 100]],
    );
    fresh.close();
  });

  test("recordBatch with one invalid value in the middle records none and names its index", () => {
    for (const [field, value] of [["progress", 101], ["status", 7], ["contentId", ""], ["consumedAtMs", 0]]) {
      const batch = [update({ contentId: "do_1", progress: 90 }), update({ [field]: value }), update({ contentId: "do_4" })];
      refused("INVALID_INPUT", () => store.recordBatch(batch), /\bupdate 1\b/, `recordBatch: ${field} = ${value}`);
    }
  });

  test("recordBatch with one wrongly typed update in the middle records none and names its index", () => {
    // The Node-API conversion of the array refuses these before headway sees them.
    const middles = [update({ progress: "40" }), update({ status: "2" }), { userId: LEARNER }, null, 42];
    for (const middle of middles) {
      const batch = [update({ contentId: "do_1", progress: 90 }), middle, update({ contentId: "do_4" })];
      refused("INVALID_INPUT", () => store.recordBatch(batch), /\b(update|index) 1\b/, `recordBatch: ${JSON.stringify(middle)}`);
    }
  });

  test("recordBatch of an empty array records nothing and answers 0; of a non-array throws INVALID_INPUT", () => {
    const before = snapshot();
    assert.equal(store.recordBatch([]), 0);
    assert.equal(snapshot(), before);
    for (const value of [undefined, null, "do_1", 42, update()]) {
      refused("INVALID_INPUT", () => store.recordBatch(value), /./, `recordBatch(${JSON.stringify(value)})`);
    }
  });
});

describe("hostile player events", () => {
  const context = { userId: LEARNER, courseId: COURSE, batchId: BATCH, batchStatus: 1, mimeType: "application/pdf" };
  const end = {
    eid: "END",
    actor: { id: LEARNER },
    object: { id: "do_4" },
    context: { pdata: { pid: "sunbird.app.contentplayer" } },
    edata: { summary: [{ progress: 100 }, { endpageseen: true }] },
  };

  test("an event that is not a JSON object throws INVALID_INPUT and records nothing", () => {
    const cyclic = { ...end };
    cyclic.self = cyclic;
    const deep = JSON.parse("[".repeat(5_000) + "]".repeat(5_000));
    const events = {
      "text that is not JSON": "{not json",
      "a 1 MB string": MB,
      "a JSON array": "[1, 2]",
      "an array": [end],
      "JSON null": "null",
      "a JSON number": "42",
      "a cyclic object": cyclic,
      "an object holding a BigInt": { ...end, big: 1n },
      "an array nested 5,000 deep": deep,
      "JSON nested 100,000 deep": `{"eid":"END","x":${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
      null: null,
      undefined: undefined,
      "a number": 42,
      "an object without eid": {},
    };
    for (const [what, event] of Object.entries(events)) {
      refused("INVALID_INPUT", () => store.recordPlayerEvent(event, context), /./, what);
    }
  });

  test("a wrong course context throws INVALID_INPUT and records nothing", () => {
    for (const bad of [null, undefined, {}, { ...context, userId: "" }, { ...context, batchStatus: "1" }, { ...context, courseId: 5 }]) {
      refused("INVALID_INPUT", () => store.recordPlayerEvent(end, bad), /./, `context ${JSON.stringify(bad)}`);
    }
  });

  test("an event for another learner than the context's records nothing", () => {
    // The control: the same event for the context's learner is recorded (on a fresh store).
    const fresh = Store.openInMemory();
    assert.equal(fresh.recordPlayerEvent(end, context), true);
    fresh.close();
    const before = snapshot();
    let answer;
    try {
      answer = store.recordPlayerEvent({ ...end, actor: { id: OTHER } }, context);
    } catch (e) {
      assert.ok(e instanceof HeadwayError && e.code === "INVALID_INPUT", String(e));
    }
    assert.notEqual(answer, true);
    assert.equal(snapshot(), before);
  });
});

describe("hostile peer files", () => {
  /** A genuine file of `LEARNER` from another device, holding do_5 at 70. */
  function genuine(user = LEARNER) {
    const peer = Store.openInMemory();
    peer.record(update({ userId: user, contentId: "do_5", progress: 70 }));
    const file = peer.peerExport(user);
    peer.close();
    return file;
  }

  test("random bytes, an empty file and a string throw REFUSED_PEER_DATA or INVALID_INPUT and change nothing", () => {
    for (let round = 0; round < 50; round++) {
      const bytes = randomBytes(1 + Math.floor(Math.random() * 4096));
      refused("REFUSED_PEER_DATA", () => store.peerImport(LEARNER, bytes), /./, `random bytes, round ${round}`);
    }
    refused("REFUSED_PEER_DATA", () => store.peerImport(LEARNER, Buffer.alloc(0)), /./, "an empty file");
    refused("INVALID_INPUT", () => store.peerImport(LEARNER, "a string"), /./, "a string");
    refused("INVALID_INPUT", () => store.peerImport(LEARNER, null), /./, "null");
  });

  test("another learner's file throws REFUSED_PEER_DATA naming that learner and changes nothing", () => {
    refused("REFUSED_PEER_DATA", () => store.peerImport(LEARNER, genuine(OTHER)), /ravi/);
  });

  test("a file truncated at any length throws REFUSED_PEER_DATA and changes nothing", () => {
    const file = genuine();
    for (let length = 0; length < file.length; length++) {
      refused("REFUSED_PEER_DATA", () => store.peerImport(LEARNER, file.subarray(0, length)), /./, `cut at ${length} of ${file.length}`);
    }
  });

  test("a file with any one byte changed is refused as REFUSED_PEER_DATA (never CORRUPT_STORE) or imported", () => {
    // A changed byte in the device id still makes a valid file; anything else is the peer's
    // fault, not the store's: CORRUPT_STORE would tell the app its own file is damaged.
    const file = genuine();
    const codes = new Map();
    for (let at = 0; at < file.length; at++) {
      const changed = Buffer.from(file);
      changed[at] ^= 0x55;
      const target = Store.openInMemory();
      target.record(update({ contentId: "do_1", progress: 40 }));
      const before = snapshot(target);
      let code;
      try {
        target.peerImport(LEARNER, changed);
        code = "imported";
      } catch (e) {
        assert.ok(e instanceof HeadwayError, String(e));
        code = e.code;
        assert.equal(snapshot(target), before, `a refused file (byte ${at}) changed the store`);
      }
      target.close();
      codes.set(code, [...(codes.get(code) ?? []), at]);
    }
    const summary = [...codes].map(([code, at]) => `${code}: ${at.length} bytes (${at.slice(0, 5)}...)`).join("; ");
    assert.deepEqual([...codes.keys()].filter((c) => c !== "imported" && c !== "REFUSED_PEER_DATA"), [], summary);
  });

  test("a key path that does not exist throws INVALID_INPUT on export and import and changes nothing", () => {
    const missing = path.join(folder.folder, "no-such.key");
    refused("INVALID_INPUT", () => store.peerExport(LEARNER, null, missing), /no-such\.key/);
    refused("INVALID_INPUT", () => store.peerImport(LEARNER, genuine(), missing), /no-such\.key/);
    refused("INVALID_INPUT", () => store.peerExport(LEARNER, null, folder.folder), /not a regular file/);
  });
});

describe("a hostile token provider", () => {
  const learner = "tokens";
  let tokenStore;
  before(async () => {
    await server.scene(learner);
    // Once a token is registered, only registered tokens pass: "old" is refused (401).
    await server.admin("/admin/token", { token: "old", userId: learner, expired: true });
    await server.admin("/admin/token", { token: "new", userId: learner });
    await server.admin("/admin/token", { token: "token", userId: LEARNER });
    tokenStore = Store.openInMemory();
    tokenStore.record(update({ userId: learner, contentId: "do_1", progress: 20 }));
  });
  after(() => tokenStore?.close());

  const snap = () => JSON.stringify([tokenStore.state(learner), tokenStore.pending(learner)]);

  test("a provider that throws, rejects or answers no string fails the sync with SERVER_UNAVAILABLE; everything stays pending", async () => {
    const providers = {
      throws: () => {
        throw new Error("the provider failed");
      },
      rejects: async () => {
        throw new Error("the provider's promise failed");
      },
      "returns undefined": () => undefined,
      "returns a number": () => 42,
      "resolves a number": async () => 42,
      "returns an empty string": () => "",
      "returns an object": () => ({ token: "new" }),
    };
    for (const [what, tokenProvider] of Object.entries(providers)) {
      const before = snap();
      await assert.rejects(
        tokenStore.sync(learner, { baseUrl: server.url, tokenProvider }),
        (e) => e instanceof HeadwayError && e.code === "SERVER_UNAVAILABLE" && /token provider/.test(e.message),
        what,
      );
      assert.equal(snap(), before, what);
      assert.equal(tokenStore.pending(learner).length, 1, what);
    }
  });

  test("after the server refuses a token the provider is asked again with refreshed === true", async () => {
    const asked = [];
    const tokenProvider = (userId, refreshed) => {
      asked.push([userId, refreshed]);
      return refreshed ? "new" : "old";
    };
    const report = await tokenStore.sync(learner, { baseUrl: server.url, tokenProvider });
    assert.equal(report.acknowledged, 1);
    assert.deepEqual(asked.slice(0, 2), [[learner, false], [learner, true]]);
    assert.equal((await server.admin(`/admin/states/${learner}`))[0].progress, 20);
  });

  test("a provider whose refreshed token is refused too fails the sync with CREDENTIALS_REFUSED after one refresh", async () => {
    tokenStore.record(update({ userId: learner, contentId: "do_1", progress: 30 }));
    const asked = [];
    const before = snap();
    await assert.rejects(
      tokenStore.sync(learner, {
        baseUrl: server.url,
        tokenProvider: async (userId, refreshed) => {
          asked.push(refreshed);
          return "old";
        },
      }),
      (e) => e instanceof HeadwayError && e.code === "CREDENTIALS_REFUSED",
    );
    assert.deepEqual(asked, [false, true]);
    assert.equal(snap(), before);
  });

  test("a sync whose token provider never resolves settles with SERVER_UNAVAILABLE, after tokenTimeoutMs", async () => {
    // In child processes, so a sync that never settled would show as a process that never
    // exits (as it did before tokenTimeoutMs). The default wait (30 s) is not waited out here.
    const script = (timeout) => `
      const { Store } = require(process.env.HEADWAY_PACKAGE);
      const store = Store.openInMemory();
      store.record({ userId: "${learner}", courseId: "${COURSE}", batchId: "${BATCH}", contentId: "do_1", status: 1, progress: 50 });
      const started = Date.now();
      const server = { baseUrl: ${JSON.stringify(server.url)}, tokenProvider: () => new Promise(() => {}), ${timeout} };
      store.sync("${learner}", server).then(
        () => console.log("resolved"),
        (e) => console.log("rejected", e.code, "after", Date.now() - started, "ms:", e.message, "pending", store.pending("${learner}").length),
      );
      `;
    const quick = await runScript(script("tokenTimeoutMs: 300"), { timeoutMs: 20_000 });
    assert.deepEqual([quick.code, quick.signal], [0, null], quick.stdout);
    assert.match(quick.stdout, /^rejected SERVER_UNAVAILABLE after \d+ ms: .*token provider did not answer.* pending 1$/m, quick.stdout);
    const waited = Number(quick.stdout.match(/after (\d+) ms/)[1]);
    assert.ok(waited >= 300 && waited < 10_000, quick.stdout);
  });

  // Syncs of one learner take turns (src/store/turns.rs): the next sync waits for the stuck
  // one, which the provider's timeout ends.
  test("a background sync whose token provider never resolves lets the process exit and blocks the next sync no longer than its token timeout", async () => {
    const { code, signal, stdout } = await runScript(
      `
      const { Store } = require(process.env.HEADWAY_PACKAGE);
      const store = Store.openInMemory();
      store.record({ userId: "${learner}", courseId: "${COURSE}", batchId: "${BATCH}", contentId: "do_2", status: 1, progress: 50 });
      store.startBackgroundSync("${learner}", { baseUrl: ${JSON.stringify(server.url)}, tokenProvider: () => new Promise(() => {}), tokenTimeoutMs: 1000 }, { debounceMs: 0 });
      setTimeout(() => {
        store.stopBackgroundSync();
        store.sync("${learner}", { baseUrl: ${JSON.stringify(server.url)}, userToken: "new" })
          .then((report) => console.log("next sync", report.acknowledged), (e) => console.log("next sync failed", e.code));
      }, 300);
      `,
      { timeoutMs: 20_000 },
    );
    assert.deepEqual([code, signal], [0, null]);
    assert.match(stdout, /next sync 1/);
  });
});

describe("a hostile server", () => {
  test("a baseUrl that is not an http(s) URL throws INVALID_INPUT from sync, refreshCourses and startBackgroundSync", async () => {
    for (const baseUrl of ["not a url", "", "ftp://127.0.0.1", "http://", "javascript:alert(1)", "file:///etc/passwd"]) {
      const target = { baseUrl, userToken: "token" };
      await rejected("INVALID_INPUT", () => store.sync(LEARNER, target), /./, `sync ${baseUrl}`);
      await rejected("INVALID_INPUT", () => store.refreshCourses(LEARNER, target), /./, `refreshCourses ${baseUrl}`);
      refused("INVALID_INPUT", () => store.startBackgroundSync(LEARNER, target), /./, `startBackgroundSync ${baseUrl}`);
    }
  });

  test("sync and refreshCourses reject (never throw) when the server is not a Server object", async () => {
    // An app writes `store.sync(user, server).catch(...)`: a synchronous throw escapes it.
    for (const target of [undefined, null, {}, { baseUrl: 42 }, "http://127.0.0.1:9", { baseUrl: server.url, tokenProvider: "token" }]) {
      await rejected("INVALID_INPUT", () => store.sync(LEARNER, target), /./, `sync ${JSON.stringify(target)}`);
      await rejected("INVALID_INPUT", () => store.refreshCourses(LEARNER, target), /./, `refreshCourses ${JSON.stringify(target)}`);
    }
    await rejected("INVALID_INPUT", () => store.sync(42, { baseUrl: server.url }), /./, "sync of user 42");
  });

  test("a server that answers garbage acknowledges nothing, and the next sync to a real server sends every item", async () => {
    const answers = {
      "text that is not JSON": (res) => res.writeHead(200, { "Content-Type": "application/json" }).end("not json"),
      "an empty object": (res) => res.writeHead(200, { "Content-Type": "application/json" }).end("{}"),
      "a result naming no item": (res) =>
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ result: { [LEARNER]: "SUCCESS" } })),
      "a result of SUCCESS for another content": (res) =>
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ result: { do_9: "SUCCESS" } })),
      "an endless body": (res) => {
        res.writeHead(200, { "Content-Type": "application/json" });
        const chunk = Buffer.alloc(1 << 16, 0x20);
        const pump = () => { while (res.write(chunk)); };
        res.on("drain", pump);
        pump();
      },
      "a 500": (res) => res.writeHead(500).end(),
      "a closed connection": (res) => res.destroy(),
    };
    let round = 0;
    for (const [what, answer] of Object.entries(answers)) {
      round += 1;
      const hostile = http.createServer((req, res) => req.resume().on("end", () => answer(res)));
      await new Promise((resolve) => hostile.listen(0, "127.0.0.1", resolve));
      const baseUrl = `http://127.0.0.1:${hostile.address().port}`;
      const device = Store.openInMemory();
      device.record(update({ contentId: "do_4", progress: 10 + round }));
      try {
        const before = JSON.stringify(device.state(LEARNER));
        let report;
        try {
          report = await device.sync(LEARNER, { baseUrl, userToken: "token" });
        } catch (e) {
          assert.ok(e instanceof HeadwayError, `${what}: ${e}`);
          assert.equal(e.code, "SERVER_UNAVAILABLE", `${what}: ${e.message}`);
        }
        assert.equal(report?.acknowledged ?? 0, 0, `${what}: ${JSON.stringify(report)}`);
        assert.equal(JSON.stringify(device.state(LEARNER)), before, `${what} changed the state`);
        // Nothing is lost: the real server then gets the item.
        const next = await device.sync(LEARNER, { baseUrl: server.url, userToken: "token" });
        assert.equal(next.acknowledged, 1, `${what}, then the real server: ${JSON.stringify(next)}`);
        const held = await server.admin(`/admin/states/${LEARNER}`);
        assert.equal(held.find((s) => s.contentId === "do_4")?.progress, 10 + round, what);
      } finally {
        device.close();
        hostile.closeAllConnections?.();
        await new Promise((resolve) => hostile.close(resolve));
      }
    }
  });
});

describe("hostile store files", () => {
  test("Store.open on a directory throws STORE_UNAVAILABLE", () => {
    const dir = path.join(folder.folder, "a-directory.db");
    mkdirSync(dir);
    refused("STORE_UNAVAILABLE", () => Store.open(dir));
  });

  test("Store.open on a file that is not a store throws CORRUPT_STORE and leaves it untouched", () => {
    for (const [name, bytes] of [
      ["text.db", Buffer.from("hello, this is not a store\n".repeat(200))],
      ["random.db", randomBytes(8192)],
      ["fake-header.db", Buffer.concat([Buffer.from("SQLite format 3\u0000"), randomBytes(8192)])],
    ]) {
      const file = path.join(folder.folder, name);
      writeFileSync(file, bytes);
      refused("CORRUPT_STORE", () => Store.open(file), /./, name);
      assert.deepEqual(readFileSync(file), bytes, `${name} was changed`);
      assert.equal(existsSync(`${file}-wal`), false, `${name} got a WAL file`);
    }
  });

  test("Store.open in a missing folder throws STORE_UNAVAILABLE and creates nothing", () => {
    const missing = path.join(folder.folder, "no", "such");
    refused("STORE_UNAVAILABLE", () => Store.open(path.join(missing, "store.db")));
    assert.equal(existsSync(path.join(folder.folder, "no")), false);
  });

  test("Store.open with a wrong path or options throws INVALID_INPUT", () => {
    refused("INVALID_INPUT", () => Store.open(42));
    refused("INVALID_INPUT", () => Store.open(undefined));
    refused("INVALID_INPUT", () => Store.open(path.join(folder.folder, "d.db"), { durability: "never" }));
  });

  test("new Store() and Store() throw INVALID_INPUT", () => {
    refused("INVALID_INPUT", () => new Store());
    refused("INVALID_INPUT", () => new Store(path.join(folder.folder, "new.db")));
    refused("INVALID_INPUT", () => Store());
    assert.equal(existsSync(path.join(folder.folder, "new.db")), false);
  });
});
