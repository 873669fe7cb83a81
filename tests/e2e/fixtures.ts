// Every browser test gets a Parlor of its own: a fresh process with a fresh SQLite
// database on a free port. Nothing one test leaves behind (a chat still waiting in the
// queue, a setting, an agent, a routing switch) can reach another, so a failure stays
// one failure. Starting one takes well under a second.
import { test as base, expect } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export { expect };
export const adminEmail = "admin@parlor.local";
export const adminPassword = "e2e-admin-password";

const repo = resolve(__dirname, "../..");

/** A Parlor server started for one test. */
export interface Parlor {
  /** Its origin, such as `http://127.0.0.1:40123`. */
  url: string;
  /** The process, for tests that freeze it (SIGSTOP) or kill it. */
  process: ChildProcess;
  /** What it printed, for the report of a failed test. */
  output(): string;
}

/** Starts Parlor on a free port with a database of its own; `env` adds or overrides settings. */
export async function startParlor(env: Record<string, string> = {}): Promise<Parlor & { stop(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), "parlor-e2e-"));
  const child = spawn(process.env.PARLOR_BIN ?? "target/debug/parlor", [], {
    cwd: repo,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      PARLOR_ADDR: "127.0.0.1:0",
      PARLOR_DATA_DIR: dataDir,
      PARLOR_ADMIN_EMAIL: adminEmail,
      PARLOR_ADMIN_PASSWORD: adminPassword,
      PARLOR_WEB_DIR: "dist",
      ...env,
    },
  });
  const printed: string[] = [];
  const output = () => printed.join("");
  child.stderr?.on("data", (chunk) => printed.push(chunk.toString()));
  // The port is the one the system gave: Parlor prints its address once it listens.
  const url = await new Promise<string>((found, failed) => {
    const timer = setTimeout(() => failed(new Error(`Parlor did not start within 60 s:\n${output()}`)), 60_000);
    child.stdout?.on("data", (chunk) => {
      printed.push(chunk.toString());
      const address = /Agent console: (http:\/\/[^/\s]+)\//.exec(output());
      if (address) {
        clearTimeout(timer);
        found(address[1]);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      failed(new Error(`Parlor exited (${code ?? signal}) before it listened:\n${output()}`));
    });
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((done) => child.once("exit", done));
      child.kill("SIGCONT");
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { url, process: child, output, stop };
}

/** A page of a host site: its HTML and, if any, its Content-Security-Policy. */
export interface HostPage {
  html: string;
  csp?: string;
  type?: string;
}

/** Somebody else's website: a little server on a free port serving the given paths. */
export async function startHostSite(pages: Record<string, HostPage>): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const found = pages[request.url ?? ""];
    if (!found) {
      response.writeHead(404);
      return response.end();
    }
    const headers: Record<string, string> = { "content-type": found.type ?? "text/html; charset=utf-8" };
    if (found.csp) headers["content-security-policy"] = found.csp;
    response.writeHead(200, headers);
    response.end(found.html);
  });
  // Every address, so that both `localhost` and `127.0.0.1` reach it.
  await new Promise<void>((listening) => server.listen(0, listening));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((closed) => server.close(() => closed()));
    },
  };
}

export const test = base.extend<{ parlor: Parlor; parlorEnv: Record<string, string> }>({
  /** Settings for this file's Parlor, as environment variables (`test.use({ parlorEnv })`). */
  parlorEnv: [{}, { option: true }],
  parlor: async ({ parlorEnv }, use, testInfo) => {
    const parlor = await startParlor(parlorEnv);
    await use(parlor);
    await parlor.stop();
    if (testInfo.status !== testInfo.expectedStatus) {
      await testInfo.attach("parlor-output", { body: parlor.output(), contentType: "text/plain" });
    }
  },
  // Pages, contexts made with `browser.newContext()` and API requests all go to this
  // test's own Parlor.
  baseURL: async ({ parlor }, use) => {
    await use(parlor.url);
  },
});
