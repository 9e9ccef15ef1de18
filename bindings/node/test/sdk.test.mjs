// Issue 19, item 3's acceptance: headway/sunbird's CourseService type-checks against the
// `.d.ts` files of @project-sunbird/sunbird-sdk 7.6.3 (test/sdk/conformance.ts). The SDK is
// fetched once by test/sdk-setup.sh (`npm pack`, into $NPM_TOOLS; the registry is needed the
// first time only).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";

import { packageDir } from "./support.mjs";

test("the course service type-checks against sunbird-sdk 7.6.3's own CourseService", () => {
  const setup = spawnSync("sh", [path.join(packageDir, "test", "sdk-setup.sh")], { encoding: "utf8" });
  assert.equal(setup.status, 0, `sdk-setup.sh failed:\n${setup.stdout}${setup.stderr}`);
  const tsc = createRequire(path.join(packageDir, "package.json")).resolve("typescript/bin/tsc");
  const check = spawnSync(process.execPath, [tsc, "-p", path.join(packageDir, "test", "sdk", "tsconfig.json")], {
    encoding: "utf8",
  });
  assert.equal(check.status, 0, `tsc found errors:\n${check.stdout}${check.stderr}`);
});
