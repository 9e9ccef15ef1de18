// The committed index.d.ts as an app's strict TypeScript sees it: test/types/usage.ts uses
// every export and each misuse the types must refuse is marked `@ts-expect-error`, so tsc
// fails both when a right use stops compiling and when a wrong one starts to.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";

import { packageDir } from "./support.mjs";

test("an app's strict TypeScript compiles against the package's types, and they refuse misuse", () => {
  const tsc = createRequire(path.join(packageDir, "package.json")).resolve("typescript/bin/tsc");
  const check = spawnSync(process.execPath, [tsc, "-p", path.join(packageDir, "test", "types", "tsconfig.json")], {
    encoding: "utf8",
  });
  assert.equal(check.status, 0, `tsc found errors:\n${check.stdout}${check.stderr}`);
});
