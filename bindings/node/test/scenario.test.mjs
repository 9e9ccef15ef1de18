// The mission's scenario in JavaScript, copy-pasted from the docs: the `<!-- scenario -->`
// block of bindings/node/README.md runs, unchanged, in an app folder of its own that installed
// the package the way the docs say (`npm install <path>/bindings/node`), against `headway serve`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { HEADWAY, packageDir, temporaryFolder } from "./support.mjs";

let app;

before(() => {
  app = temporaryFolder("headway-app-");
  writeFileSync(path.join(app.folder, "package.json"), JSON.stringify({ name: "an-app", private: true }));
  const install = spawnSync("npm", ["install", "--no-audit", "--no-fund", packageDir], {
    cwd: app.folder,
    encoding: "utf8",
  });
  assert.equal(install.status, 0, `npm install failed:\n${install.stdout}${install.stderr}`);
});

after(() => app.remove());

/** A script in the app folder, run there with node. */
function runInApp(name, source) {
  writeFileSync(path.join(app.folder, name), source);
  const run = spawnSync(process.execPath, [name], {
    cwd: app.folder,
    encoding: "utf8",
    env: { ...process.env, HEADWAY_BIN: HEADWAY },
    timeout: 120_000,
  });
  assert.equal(run.status, 0, `${name} failed (${run.status} ${run.signal}):\n${run.stdout}${run.stderr}`);
  return run.stdout;
}

test("an app that ran `npm install <path>/bindings/node` requires and imports the package", () => {
  const cjs = runInApp("cjs.js", `
    const { Store, Status, HeadwayError } = require("headway");
    const { CourseService } = require("headway/sunbird");
    console.log(typeof Store.open, Status.Completed, typeof HeadwayError, typeof CourseService);
  `);
  assert.equal(cjs.trim(), "function 2 function function");
  const esm = runInApp("esm.mjs", `
    import { Store, Status, HeadwayError } from "headway";
    import { CourseService } from "headway/sunbird";
    const store = Store.openInMemory();
    console.log(store instanceof Store, Status.InProgress, typeof HeadwayError, typeof CourseService);
  `);
  assert.equal(esm.trim(), "true 1 function function");
});

test("the README's scenario runs as copy-pasted, offline to online to a third device", () => {
  const readme = readFileSync(path.join(packageDir, "README.md"), "utf8");
  const block = readme.split("<!-- scenario -->\n```js\n")[1]?.split("\n```")[0];
  assert.ok(block, "README.md has a <!-- scenario --> js block");
  const out = runInApp("scenario.js", block);
  const lines = out.split("\n");
  // Offline: the record and the END event completed 2 of 4 leaves.
  assert.ok(lines.includes("offline: [ 50 ]"), out);
  assert.match(out, /^still pending: 2 .*cannot connect/m);
  // Back online: both sent and acknowledged, in bulk (fewer requests than items, or one).
  const sent = out.match(/^sent (\d+), acknowledged (\d+), requests (\d+)$/m);
  assert.ok(sent, out);
  assert.deepEqual([Number(sent[1]), Number(sent[2])], [2, 2]);
  assert.equal(Number(sent[3]), 1);
  // The second device's refresh sees the phone's progress.
  assert.ok(lines.includes("tablet: [ 50 ]"), out);
  assert.match(out, /^refused: INVALID_INPUT progress 101/m);
  // The listener heard the changes, on the JavaScript thread.
  assert.match(out, /^event: ContentStateChanged$/m);
  assert.match(out, /^event: SyncFailed$/m);
});
