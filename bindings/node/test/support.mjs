// What the suites share: `headway serve` on a free port of 127.0.0.1 (the binary is
// $HEADWAY_BIN, default target/debug/headway), its admin calls, a course scene, temporary
// folders, and running a Node script in a child process.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const here = path.dirname(fileURLToPath(import.meta.url));
/** The package folder (bindings/node). */
export const packageDir = path.resolve(here, "..");
export const HEADWAY = process.env.HEADWAY_BIN || path.resolve(here, "../../../target/debug/headway");

/** A fresh temporary folder, removed by the returned `remove`. */
export function temporaryFolder(prefix = "headway-node-") {
  const folder = mkdtempSync(path.join(tmpdir(), prefix));
  return { folder, remove: () => rmSync(folder, { recursive: true, force: true }) };
}

/** Starts `headway serve` (extra `args` appended); `server.stop()` ends it. */
export async function serve(...args) {
  if (!existsSync(HEADWAY)) {
    throw new Error(`no headway binary at ${HEADWAY}: run \`cargo build -p headway-cli\` or set HEADWAY_BIN`);
  }
  // Its own store file, in a folder removed when it stops.
  const home = temporaryFolder("headway-serve-");
  const child = spawn(
    HEADWAY,
    ["serve", "--addr", "127.0.0.1:0", "--db", path.join(home.folder, "server.db"), "-q", ...args],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const line = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (out.includes("\n")) resolve(out.split("\n")[0]);
    });
    child.on("exit", (code) => reject(new Error(`headway serve exited (${code}): ${out}`)));
  });
  const url = line.split(" ").at(-1);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  return {
    url,
    /** A POST (with `body`) or GET (without) to the server's admin routes; the parsed answer. */
    async admin(route, body) {
      const answer = await fetch(
        url + route,
        body === undefined
          ? {}
          : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) },
      );
      assert.ok(answer.ok, `${route} answered ${answer.status}`);
      const text = await answer.text();
      return text ? JSON.parse(text) : undefined;
    },
    /** One course of `leaves` with an ongoing batch, and `learner` enrolled in it. */
    async scene(learner, course = "do_course", batch = "0130", leaves = ["do_1", "do_2", "do_3", "do_4"]) {
      await this.admin("/admin/course", { courseId: course, leafNodes: leaves });
      await this.admin("/admin/batch", { batchId: batch, courseId: course, status: 1 });
      await this.admin("/admin/enrol", { userId: learner, courseId: course, batchId: batch });
    },
    stop() {
      child.kill();
      home.remove();
    },
  };
}

/**
 * Runs `source` (a CommonJS script) with node in a child process; the script loads this
 * package with `require(process.env.HEADWAY_PACKAGE)`. Resolves with its exit code, signal,
 * stdout and stderr.
 */
export function runScript(source, { env = {}, timeoutMs = 60_000, nodeOptions = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeOptions, "-e", source], {
      cwd: packageDir,
      env: { ...process.env, HEADWAY_PACKAGE: packageDir, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the script did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
