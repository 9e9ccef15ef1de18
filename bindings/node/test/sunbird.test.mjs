// headway/sunbird (issue 19, item 3): the sunbird-sdk-shaped CourseService over the real addon
// and `headway serve` on 127.0.0.1. The SDK's request objects go in; what comes out is compared
// with what Sunbird's own endpoints answer (the reference server's `content/state/read` and
// enrollment list, which the SDK hands to the app as they are).
//
// Needs the addon and sunbird.js built (`npm run build:debug`) and the `headway` binary
// ($HEADWAY_BIN, default target/debug/headway: `cargo build -p headway-cli`).

import assert from "node:assert/strict";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { firstValueFrom } from "rxjs";
import { HeadwayError, Store } from "headway";
import { CourseService, sunbirdTime } from "headway/sunbird";

import { serve, temporaryFolder } from "./support.mjs";

const COURSE = "do_fractions";
const BATCH = "0130000000000000001";
const LEAVES = ["do_fractions_1", "do_fractions_2", "do_fractions_3"];
/** Sunbird's time format: `yyyy-MM-dd HH:mm:ss:SSS+0000` (a colon before the milliseconds). */
const SUNBIRD_TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}\+0000$/;

/** `headway serve` (its store in a folder of its own), and what this suite asks of it. */
async function sunbird(_folder, ...args) {
  const server = await serve(...args);
  return Object.assign(server, {
    /** What Sunbird's API itself answers (its `result`), with `token` as the learner's token. */
    async api(method, route, token, body) {
      const answer = await fetch(server.url + route, {
        method,
        headers: { "Content-Type": "application/json", "x-authenticated-user-token": token },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      assert.equal(answer.status, 200, `${route}: ${await answer.clone().text()}`);
      return (await answer.json()).result;
    },
    /** A course with three leaves, an ongoing batch, and `learner` enrolled in it. */
    async enrol(learner) {
      await server.admin("/admin/course", { courseId: COURSE, name: "Fractions", leafNodes: LEAVES });
      await server.admin("/admin/batch", { batchId: BATCH, courseId: COURSE, status: 1 });
      await server.admin("/admin/enrol", { userId: learner, courseId: COURSE, batchId: BATCH });
    },
  });
}

/** A TCP server that accepts connections and never answers: any request to it would hang. */
async function blackHole() {
  const sockets = new Set();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    sockets.add(socket);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    connections: () => connections,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/** An address where nothing listens: a connection is refused at once. */
async function nothingListening() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** What the Observable emits synchronously on subscribe (`undefined` if it has not yet). */
function emittedAtOnce(observable) {
  let value;
  let failure;
  let done = false;
  observable.subscribe({
    next: (v) => {
      value = v;
      done = true;
    },
    error: (e) => {
      failure = e;
    },
  });
  if (failure) throw failure;
  return done ? value : undefined;
}

/** Polls `check` until it returns a truthy value (at most 10 s). */
async function eventually(check) {
  for (let tries = 0; tries < 200; tries += 1) {
    const value = await check();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail("not within 10 s");
}

/** The SDK's summary handler's update for a player END event (sunbird-sdk, course handler). */
function endEvent(learner, contentId) {
  return {
    userId: learner,
    contentId,
    courseId: COURSE,
    batchId: BATCH,
    status: 2,
    progress: 100,
    target: ["LOCAL", "SERVER"],
  };
}

/** `error` is a HeadwayError with `code`. */
function isHeadwayError(code) {
  return (error) => {
    assert.ok(error instanceof HeadwayError, `not a HeadwayError: ${error}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

let folder;
let removeFolder;
let server;
let learners = 0;
const learner = () => `learner-${process.pid}-${(learners += 1)}`;

before(async () => {
  ({ folder, remove: removeFolder } = temporaryFolder("headway-sunbird-"));
  // Sunbird's list lags completions (a Flink job, a response cache): a long lag shows that the
  // device's progress counts before the server's list has it.
  server = await sunbird(folder, "--progress-lag-ms", "600000");
});

after(() => {
  server?.stop();
  removeFolder?.();
});

describe("offline", () => {
  test("the device's courses and content states are answered at once, without the network", async () => {
    const asha = learner();
    await server.enrol(asha);
    const store = Store.open(path.join(folder, `${asha}.db`));
    const online = new CourseService(store, { baseUrl: server.url, userToken: "token" });
    await firstValueFrom(online.getEnrolledCourses({ userId: asha, returnFreshCourses: true }));

    const hole = await blackHole();
    try {
      const offline = new CourseService(store, { baseUrl: hole.url, userToken: "token" });
      const before = emittedAtOnce(offline.getEnrolledCourses({ userId: asha }));
      assert.deepEqual(before.map((c) => [c.courseId, c.completionPercentage]), [[COURSE, 0]]);
      const noStates = emittedAtOnce(offline.getContentState({ userId: asha, courseId: COURSE, batchId: BATCH }));
      assert.deepEqual(noStates, { contentList: [] });
      assert.equal(hole.connections(), 0, "a read went to the network");

      // The player's END event for one leaf, then a START for another, as the SDK sends them.
      assert.equal(emittedAtOnce(offline.updateContentState(endEvent(asha, LEAVES[0]))), true);
      assert.equal(
        emittedAtOnce(offline.updateContentState({
          userId: asha, contentId: LEAVES[1], courseId: COURSE, batchId: BATCH, status: 1, progress: 5,
        })),
        true,
      );

      const [course] = emittedAtOnce(offline.getEnrolledCourses({ userId: asha }));
      assert.equal(course.progress, 1); // completed leaves, a count as on the server
      assert.equal(course.completionPercentage, 33); // 1 of 3, rounded down as the server does
      assert.equal(course.status, 1);
      assert.deepEqual(course.contentsPlayedOffline, [LEAVES[0]]);
      assert.equal(course.courseName, "Fractions"); // the server's own fields are kept

      const states = emittedAtOnce(offline.getContentState({ userId: asha, courseId: COURSE, batchId: BATCH }));
      const byContent = new Map(states.contentList.map((s) => [s.contentId, s]));
      assert.deepEqual([...byContent.keys()].sort(), [LEAVES[0], LEAVES[1]]);
      const done = byContent.get(LEAVES[0]);
      assert.deepEqual(
        { ...done, lastAccessTime: undefined, lastCompletedTime: undefined },
        { contentId: LEAVES[0], courseId: COURSE, collectionId: COURSE, batchId: BATCH, status: 2,
          progress: 100, lastAccessTime: undefined, lastCompletedTime: undefined },
      );
      assert.match(done.lastAccessTime, SUNBIRD_TIME);
      assert.match(done.lastCompletedTime, SUNBIRD_TIME);
      assert.equal(byContent.get(LEAVES[1]).status, 1);
      assert.equal(byContent.get(LEAVES[1]).lastCompletedTime, undefined); // absent, never null
      assert.ok(!Object.values(byContent.get(LEAVES[1])).includes(null));

      const only = emittedAtOnce(offline.getContentState({
        userId: asha, courseId: COURSE, batchId: BATCH, contentIds: [LEAVES[1]], fields: ["progress"],
      }));
      assert.deepEqual(only.contentList.map((s) => s.contentId), [LEAVES[1]]);
      const otherBatch = emittedAtOnce(offline.getContentState({ userId: asha, courseId: COURSE, batchId: "0131" }));
      assert.deepEqual(otherBatch, { contentList: [] });
    } finally {
      hole.close();
    }
    store.close();
  });

  test("an unreachable or failing server answers the device's cache, with the progress made offline", async () => {
    const asha = learner();
    await server.enrol(asha);
    const store = Store.open(path.join(folder, `${asha}.db`));
    const online = new CourseService(store, { baseUrl: server.url, userToken: "token" });
    await online.promises.getEnrolledCourses({ userId: asha, returnFreshCourses: true });

    const offline = new CourseService(store, { baseUrl: await nothingListening(), userToken: "token" });
    await firstValueFrom(offline.updateContentState(endEvent(asha, LEAVES[2])));
    const fresh = await firstValueFrom(offline.getEnrolledCourses({ userId: asha, returnFreshCourses: true }));
    assert.deepEqual(fresh.map((c) => [c.courseId, c.batchId, c.completionPercentage]), [[COURSE, BATCH, 33]]);
    const states = await firstValueFrom(offline.getContentState({
      userId: asha, courseId: COURSE, batchId: BATCH, returnRefreshedContentStates: true,
    }));
    assert.deepEqual(states.contentList.map((s) => [s.contentId, s.status]), [[LEAVES[2], 2]]);
    assert.deepEqual(store.pending(asha).map((i) => i.contentId), [LEAVES[2]]); // still to send
    assert.deepEqual(
      await offline.promises.getContentState({ userId: asha, courseId: COURSE, batchId: BATCH }),
      states,
    );

    // A server that answers, but only 503s, is no different.
    await server.admin("/admin/faults", { failNext: 1000, failStatus: 503 });
    try {
      const failing = await online.promises.getEnrolledCourses({ userId: asha, returnFreshCourses: true });
      assert.deepEqual(failing.map((c) => [c.courseId, c.completionPercentage]), [[COURSE, 33]]);
      assert.deepEqual(store.pending(asha).map((i) => i.contentId), [LEAVES[2]]);
    } finally {
      await server.admin("/admin/faults", { failNext: 0 });
    }
    store.close();
  });
});

describe("online", () => {
  test("fresh answers send what is pending and read the server, in Sunbird's own shapes", async () => {
    const asha = learner();
    await server.enrol(asha);
    const phone = Store.open(path.join(folder, `${asha}-phone.db`));
    const tablet = Store.open(path.join(folder, `${asha}-tablet.db`));
    const online = new CourseService(phone, { baseUrl: server.url, userToken: "token" });
    const onTablet = new CourseService(tablet, { baseUrl: server.url, userToken: "token" });
    // Both devices have the list cached, so only a fresh read goes to the server.
    await online.promises.getEnrolledCourses({ userId: asha });
    await onTablet.promises.getEnrolledCourses({ userId: asha });
    const offline = new CourseService(phone, { baseUrl: await nothingListening(), userToken: "token" });
    await offline.promises.updateContentState(endEvent(asha, LEAVES[0]));
    await offline.promises.updateContentState(endEvent(asha, LEAVES[1]));
    assert.deepEqual(await server.admin(`/admin/states/${asha}`), []);
    assert.deepEqual(await onTablet.promises.getContentState({ userId: asha, courseId: COURSE, batchId: BATCH }),
      { contentList: [] });

    // Back online: one fresh read sends both completions, then reads the server's list.
    const [course] = await firstValueFrom(online.getEnrolledCourses({ userId: asha, returnFreshCourses: true }));
    const onServer = await server.admin(`/admin/states/${asha}`);
    assert.deepEqual(onServer.map((s) => [s.contentId, s.status]).sort(), [[LEAVES[0], 2], [LEAVES[1], 2]]);
    assert.equal(phone.pending(asha).length, 0);
    assert.equal(course.contentsPlayedOffline, undefined); // the server has them now
    // The server's list still lags (its progress is 0); the device's completions count.
    const { courses: [listed] } = await server.api("GET", `/api/course/v1/user/enrollment/list/${asha}`, "token");
    assert.equal(listed.progress, 0);
    assert.equal(course.progress, 2);
    assert.equal(course.completionPercentage, 66);
    // Every other field is the server's, as sent (what the SDK hands the app), with
    // `content.leafNodes` put back from the addon's `leafNodes`.
    assert.deepEqual(listed.content.leafNodes, LEAVES);
    assert.deepEqual(course.content, listed.content);
    for (const [field, value] of Object.entries(listed)) {
      if (!["progress", "completionPercentage", "status", "contentStatus", "content"].includes(field)) {
        assert.deepEqual(course[field], value, field);
      }
    }

    // The second device: a fresh read of content states equals the server's own
    // `content/state/read` rows, but for the counters headway does not keep.
    const states = await firstValueFrom(onTablet.getContentState({
      userId: asha, courseId: COURSE, batchId: BATCH, returnRefreshedContentStates: true,
    }));
    const read = await server.api("POST", "/api/course/v1/content/state/read", "token", {
      request: { userId: asha, courseId: COURSE, batchId: BATCH },
    });
    const notKept = ({ viewCount, completedCount, progressdetails, ...kept }) => kept;
    const sorted = (list) => [...list].sort((a, b) => a.contentId.localeCompare(b.contentId));
    assert.deepEqual(sorted(states.contentList), sorted(read.contentList.map(notKept)));
    for (const state of states.contentList) {
      assert.match(state.lastAccessTime, SUNBIRD_TIME);
      assert.match(state.lastCompletedTime, SUNBIRD_TIME);
    }
    const [onTheTablet] = await onTablet.promises.getEnrolledCourses({ userId: asha });
    assert.equal(onTheTablet.completionPercentage, 66);
    phone.close();
    tablet.close();
  });

  test("a device that never read the list asks the server first, as the SDK does with an empty cache", async () => {
    const asha = learner();
    await server.enrol(asha);
    const phone = Store.openInMemory();
    const onPhone = new CourseService(phone, { baseUrl: server.url, userToken: "token" });
    await onPhone.promises.updateContentState({ ...endEvent(asha, LEAVES[0]), target: ["LOCAL"] });
    await onPhone.promises.getEnrolledCourses({ userId: asha, returnFreshCourses: true }); // sends it

    const tablet = Store.openInMemory();
    const onTablet = new CourseService(tablet, { baseUrl: server.url, userToken: "token" });
    const { contentList } = await firstValueFrom(onTablet.getContentState({ userId: asha, courseId: COURSE, batchId: BATCH }));
    assert.deepEqual(contentList.map((s) => [s.contentId, s.status]), [[LEAVES[0], 2]]);
    const courses = await firstValueFrom(onTablet.getEnrolledCourses({ userId: asha }));
    assert.deepEqual(courses.map((c) => [c.courseId, c.completionPercentage]), [[COURSE, 33]]);
    phone.close();
    tablet.close();
  });

  test("an update is sent in the background, without waiting for it", async () => {
    const asha = learner();
    await server.enrol(asha);
    const store = Store.open(path.join(folder, `${asha}.db`));
    const service = new CourseService(store, { baseUrl: server.url, userToken: "token" });
    await service.promises.getEnrolledCourses({ userId: asha });
    assert.equal(emittedAtOnce(service.updateContentState(endEvent(asha, LEAVES[2]))), true);
    const onServer = await eventually(async () => {
      const states = await server.admin(`/admin/states/${asha}`);
      return states.length > 0 && states;
    });
    assert.deepEqual(onServer.map((s) => [s.contentId, s.status, s.progress]), [[LEAVES[2], 2, 100]]);
    await eventually(() => store.pending(asha).length === 0);

    // A LOCAL-only update (the SDK's for Course Assessment content) is not sent now.
    await service.promises.updateContentState({ ...endEvent(asha, LEAVES[0]), target: ["LOCAL"] });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(store.pending(asha).map((i) => i.contentId), [LEAVES[0]]);
    assert.equal((await server.admin(`/admin/states/${asha}`)).length, 1);
    store.close();
  });

  test("a refused user token reaches the app as CREDENTIALS_REFUSED, and nothing is lost", async () => {
    const asha = learner();
    const strict = await sunbird(folder, "--token", `good-token=${asha}`);
    try {
      await strict.enrol(asha);
      const store = Store.open(path.join(folder, `${asha}.db`));
      const good = new CourseService(store, { baseUrl: strict.url, userToken: "good-token" });
      await good.promises.getEnrolledCourses({ userId: asha, returnFreshCourses: true });
      const stale = new CourseService(store, { baseUrl: strict.url, userToken: "expired-token" });
      await stale.promises.updateContentState({ ...endEvent(asha, LEAVES[0]), target: ["LOCAL"] });

      await assert.rejects(
        firstValueFrom(stale.getEnrolledCourses({ userId: asha, returnFreshCourses: true })),
        isHeadwayError("CREDENTIALS_REFUSED"),
      );
      await assert.rejects(
        stale.promises.getContentState({
          userId: asha, courseId: COURSE, batchId: BATCH, returnRefreshedContentStates: true,
        }),
        isHeadwayError("CREDENTIALS_REFUSED"),
      );
      assert.deepEqual(store.pending(asha).map((i) => i.contentId), [LEAVES[0]]);
      // Without asking for fresh answers, the device still answers.
      const [course] = await firstValueFrom(stale.getEnrolledCourses({ userId: asha }));
      assert.equal(course.completionPercentage, 33);
      store.close();
    } finally {
      strict.stop();
    }
  });
});

describe("refused updates", () => {
  test("an update headway cannot record errors with INVALID_INPUT and records nothing", async () => {
    const asha = learner();
    const store = Store.openInMemory();
    const service = new CourseService(store, { baseUrl: await nothingListening() });
    const valid = { userId: asha, contentId: LEAVES[0], courseId: COURSE, batchId: BATCH, status: 1, progress: 40 };
    const refused = {
      "no status": { ...valid, status: undefined },
      "progress over 100": { ...valid, progress: 101 },
      "a fractional progress": { ...valid, progress: 40.5 },
      "status 3": { ...valid, status: 3 },
      "a blank content id": { ...valid, contentId: "" },
      "no batch": { ...valid, batchId: undefined },
      "progress as text": { ...valid, progress: "40" },
    };
    for (const [why, request] of Object.entries(refused)) {
      await assert.rejects(firstValueFrom(service.updateContentState(request)), isHeadwayError("INVALID_INPUT"), why);
      await assert.rejects(service.promises.updateContentState(request), isHeadwayError("INVALID_INPUT"), why);
    }
    assert.deepEqual(store.state(asha), []);
    // The same request, valid, goes in: the refusals were about the fields above.
    assert.equal(await firstValueFrom(service.updateContentState({ ...valid, target: ["LOCAL"] })), true);
    assert.equal(store.state(asha).length, 1);
    store.close();
  });

  test("a completed content has progress 100, as on Sunbird's server, and a missing progress is 0", async () => {
    const asha = learner();
    const store = Store.openInMemory();
    const service = new CourseService(store, { baseUrl: await nothingListening() });
    const started = { userId: asha, contentId: LEAVES[0], courseId: COURSE, batchId: BATCH, target: ["LOCAL"] };
    await service.promises.updateContentState({ ...started, status: 1 });
    await service.promises.updateContentState({ ...started, contentId: LEAVES[1], status: 2, progress: 60 });
    await service.promises.updateContentState({ ...started, contentId: LEAVES[2], status: 2 });
    const { contentList } = await service.promises.getContentState({ userId: asha, courseId: COURSE, batchId: BATCH });
    assert.deepEqual(contentList.map((s) => [s.contentId, s.status, s.progress]).sort(),
      [[LEAVES[0], 1, 0], [LEAVES[1], 2, 100], [LEAVES[2], 2, 100]]);
    store.close();
  });

  test("nothing happens before subscribe, as with the SDK's Observables", async () => {
    const asha = learner();
    const store = Store.openInMemory();
    const service = new CourseService(store, { baseUrl: await nothingListening() });
    const update = service.updateContentState({ ...endEvent(asha, LEAVES[0]), target: ["LOCAL"] });
    assert.deepEqual(store.state(asha), []);
    assert.equal(await firstValueFrom(update), true);
    assert.equal(store.state(asha).length, 1);
    store.close();
  });
});

test("times are written in Sunbird's format, in UTC", () => {
  assert.equal(sunbirdTime(Date.UTC(2024, 4, 1, 10, 15, 30, 123)), "2024-05-01 10:15:30:123+0000");
  assert.equal(sunbirdTime(Date.UTC(2020, 10, 23, 12, 58, 35, 9)), "2020-11-23 12:58:35:009+0000");
});
