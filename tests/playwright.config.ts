// Browser tests: real headless Chromium (Debian's) against a real Parlor server with a
// fresh SQLite database, started here for the run.
import { defineConfig } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const port = Number(process.env.PARLOR_TEST_PORT ?? 8181);
export const adminEmail = "admin@parlor.local";
export const adminPassword = "e2e-admin-password";

export default defineConfig({
  testDir: "./e2e",
  timeout: 90_000,
  expect: { timeout: 15_000 },
  workers: 1,
  reporter: [["list"]],
  outputDir: "../target/playwright",
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic",
      ],
    },
  },
  webServer: {
    command: process.env.PARLOR_BIN ?? "target/debug/parlor",
    cwd: "..",
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    env: {
      PARLOR_ADDR: `127.0.0.1:${port}`,
      PARLOR_DATA_DIR: mkdtempSync(join(tmpdir(), "parlor-e2e-")),
      PARLOR_ADMIN_EMAIL: adminEmail,
      PARLOR_ADMIN_PASSWORD: adminPassword,
      PARLOR_WEB_DIR: "dist",
    },
  },
});
