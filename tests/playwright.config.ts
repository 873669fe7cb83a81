// Browser tests: real headless Chromium (Debian's) against real Parlor servers. Each
// test starts a Parlor of its own with a fresh SQLite database (`e2e/fixtures.ts`).
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "./e2e",
  timeout: 90_000,
  expect: { timeout: 15_000 },
  // Two cores: the browser, Parlor and the test runner already share them.
  workers: 1,
  // A failed test runs once more, so the report tells a flaky test (passed the second
  // time) from a broken one; either way the run fails.
  retries: 1,
  failOnFlakyTests: true,
  reporter: [["list"]],
  outputDir: "../target/playwright",
  use: {
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
});
