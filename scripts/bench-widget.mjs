// Widget time to interactive, in this machine's headless Chromium: from the click on the
// launcher to a panel the visitor can use (its form shown and its socket open). Prints
// the median, fastest and slowest of several runs, with an empty cache (a new browser
// context each run), with an empty cache but the pointer on the launcher a moment before
// the click (the loader's intent prefetch), and with a warm cache (the same context, page
// reloaded).
//
//   node scripts/bench-widget.mjs [runs]        (after scripts/build-web.sh and a server build)
//
// It starts Parlor itself (target/release/parlor, else target/debug/parlor) on a free
// port with a fresh database. Timing is taken in Node around Playwright's click and wait,
// so it includes Playwright's own polling (a few milliseconds).
import { chromium } from "@playwright/test";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const runs = Number(process.argv[2] ?? 7);
// How long the pointer rests on the launcher before the click, in the hover runs.
const hoverMs = Number(process.env.PARLOR_BENCH_HOVER_MS ?? 1000);
const port = Number(process.env.PARLOR_BENCH_PORT ?? 18282);
const base = `http://127.0.0.1:${port}`;
const bin =
  process.env.PARLOR_BIN ??
  (existsSync("target/release/parlor") ? "target/release/parlor" : "target/debug/parlor");
const data = mkdtempSync(join(tmpdir(), "parlor-bench-widget-"));

const server = spawn(bin, [], {
  stdio: "ignore",
  env: {
    ...process.env,
    PARLOR_ADDR: `127.0.0.1:${port}`,
    PARLOR_DATA_DIR: data,
    PARLOR_ADMIN_PASSWORD: "bench-widget-password",
    PARLOR_WEB_DIR: "dist",
  },
});

async function up() {
  for (let i = 0; i < 300; i++) {
    if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${bin} did not start`);
}

/** Milliseconds from the click to a usable panel. */
async function openPanel(page) {
  const launcher = page.getByRole("button", { name: "Open chat" });
  await launcher.waitFor();
  const panel = page.frameLocator("iframe.panel");
  const started = performance.now();
  await launcher.click();
  await panel.locator(".prechat button[type=submit]").waitFor({ state: "visible" });
  // The banner hides once the socket is open.
  await panel.locator(".link-banner").waitFor({ state: "hidden" });
  return performance.now() - started;
}

function summary(name, times) {
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const ms = (t) => `${t.toFixed(0)} ms`;
  console.log(
    `${name.padEnd(34)} median ${ms(median).padStart(7)}   fastest ${ms(sorted[0]).padStart(7)}   slowest ${ms(sorted.at(-1)).padStart(7)}   (${sorted.length} runs)`,
  );
}

let browser;
try {
  await up();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--no-first-run", "--disable-sync"],
  });
  const cold = [];
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/demo`);
    cold.push(await openPanel(page));
    await context.close();
  }
  // The visitor points at the launcher first (as a mouse does on its way to a click):
  // the loader warms the panel, and the click comes a moment later.
  const hovered = [];
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/demo`);
    await page.getByRole("button", { name: "Open chat" }).hover();
    await page.waitForTimeout(hoverMs);
    hovered.push(await openPanel(page));
    await context.close();
  }
  const warm = [];
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/demo`);
  await openPanel(page);
  for (let i = 0; i < runs; i++) {
    // A fresh page load with the panel closed; its files come from the HTTP cache.
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
    warm.push(await openPanel(page));
  }
  await context.close();
  console.log(`Widget time to interactive (${bin}, headless Chromium, this machine)`);
  summary("Click to usable panel, empty cache", cold);
  summary(`Click ${hoverMs} ms after a hover, empty cache`, hovered);
  summary("Click to usable panel, warm cache", warm);
} finally {
  await browser?.close();
  server.kill("SIGTERM");
  rmSync(data, { recursive: true, force: true });
}
