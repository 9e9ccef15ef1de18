// What a read of the whole change found, each fixed after its test failed: counts and events
// past a subscription's bound, close inside a listener, a store the app dropped, the course
// service's first read, and inputs that were accepted silently.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import headway from "../index.js";
import { CourseService } from "../sunbird.js";
import { runScript, serve } from "./support.mjs";

const { HeadwayError, Status, Store } = headway;
const item = (i, progress = 50) => ({
  userId: "asha", courseId: "do_course", batchId: "0130", contentId: `do_${i}`, status: 1, progress,
});
const refused = (code) => (e) => e instanceof HeadwayError && e.code === code;

describe("past a subscription's bound", () => {
  test("a peer file of 20,000 items imports and counts 20,000", () => {
    const phone = Store.openInMemory();
    assert.equal(phone.recordBatch(Array.from({ length: 20_000 }, (_, i) => item(i))), 20_000);
    const school = Store.openInMemory();
    assert.equal(school.peerImport("asha", phone.peerExport("asha")), 20_000);
    assert.equal(school.state("asha").length, 20_000);
  });

  test("a listener that falls behind hears a Lagged event saying how many it missed", async () => {
    const store = Store.openInMemory();
    const heard = { changes: 0, missed: 0 };
    let resolve;
    const lagged = new Promise((r) => (resolve = r));
    store.subscribe((event) => {
      if (event.type === "ContentStateChanged") heard.changes += 1;
      if (event.type === "Lagged") heard.missed += event.missed;
      // Every change is either heard or counted as missed.
      if (heard.changes + heard.missed >= 40_000) resolve();
    });
    const alive = setTimeout(() => {}, 20_000);
    store.recordBatch(Array.from({ length: 40_000 }, (_, i) => item(i)));
    await lagged;
    clearTimeout(alive);
    assert.ok(heard.missed > 0, JSON.stringify(heard));
    assert.equal(heard.changes + heard.missed, 40_000, JSON.stringify(heard));
  });
});

describe("listeners and the life of a store", () => {
  test("close inside a listener silences the events already queued", async () => {
    const store = Store.openInMemory();
    let heard = 0;
    store.subscribe(() => {
      heard += 1;
      store.close();
    });
    store.recordBatch([item(1), item(2), item(3)]);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(heard, 1);
  });

  test("a store the app dropped keeps its background sync through a garbage collection", async () => {
    const server = await serve();
    try {
      await server.scene("asha");
      const { code, stdout, stderr } = await runScript(`
        const { Store } = require(process.env.HEADWAY_PACKAGE);
        const path = require("node:path"), os = require("node:os"), fs = require("node:fs");
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "headway-gc-")), "p.db");
        (() => {
          const dropped = Store.open(file);
          dropped.startBackgroundSync("asha", { baseUrl: ${JSON.stringify(server.url)}, userToken: "t" }, { debounceMs: 0, intervalMs: 100 });
        })();
        global.gc();
        const other = Store.open(file);
        other.record({ userId: "asha", courseId: "do_course", batchId: "0130", contentId: "do_1", status: 2, progress: 100 });
        const started = Date.now();
        const check = setInterval(() => {
          global.gc();
          if (other.pending("asha").length === 0 || Date.now() - started > 10000) {
            clearInterval(check);
            console.log("pending", other.pending("asha").length);
            process.exit(0);
          }
        }, 100);
      `, { nodeOptions: ["--expose-gc"] });
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^pending 0$/m, stdout);
    } finally {
      server.stop();
    }
  });
});

describe("the course service", () => {
  let server;
  before(async () => {
    server = await serve();
  });
  after(() => server.stop());

  test("asks the server once for a learner enrolled in nothing, then answers from the store", async () => {
    const store = Store.openInMemory();
    let asked = 0;
    const courses = new CourseService(store, {
      baseUrl: server.url,
      tokenProvider: () => {
        asked += 1;
        return "token";
      },
    });
    for (let read = 0; read < 5; read++) {
      const states = await courses.promises.getContentState({ userId: "ravi", courseId: "do_course", batchId: "0130" });
      assert.deepEqual(states.contentList, []);
    }
    assert.equal(asked, 1);
  });
});

describe("inputs that were accepted silently", () => {
  test("tokenTimeoutMs must be whole ms from 1 to a day", async () => {
    const store = Store.openInMemory();
    for (const tokenTimeoutMs of [-1, 0, NaN, 1.5, 1e10]) {
      await assert.rejects(
        store.sync("asha", { baseUrl: "http://127.0.0.1:9", tokenProvider: () => "t", tokenTimeoutMs }),
        refused("INVALID_INPUT"),
        String(tokenTimeoutMs),
      );
    }
  });

  test("Store.open refuses an empty path, a NUL in it, and options that are not an object", () => {
    assert.throws(() => Store.open(""), refused("INVALID_INPUT"));
    assert.throws(() => Store.open("a\0b.db"), refused("INVALID_INPUT"));
    assert.throws(() => Store.open("x.db", "powerLoss"), refused("INVALID_INPUT"));
  });

  test("recordBatch names the update whose id holds a NUL, and an update that throws is INVALID_INPUT", () => {
    const store = Store.openInMemory();
    assert.throws(
      () => store.recordBatch([item(1), { ...item(2), contentId: "do\0x" }]),
      (e) => refused("INVALID_INPUT")(e) && /update 1/.test(e.message),
    );
    const hostile = { ...item(3) };
    Object.defineProperty(hostile, "progress", { get() { throw new Error("boom"); }, enumerable: true });
    assert.throws(() => store.recordBatch([hostile]), (e) => e instanceof HeadwayError);
    assert.deepEqual(store.state("asha"), []);
  });

  test("Status maps numbers back to names, as TypeScript's numeric enums do", () => {
    assert.equal(Status[Status.Completed], "Completed");
    assert.equal(Status[0], "NotStarted");
  });
});
