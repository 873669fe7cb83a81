// A screen pop is never silent: signing in (any first click) unlocks sound, the pop
// plays a tone, flashes the title and badges the tab's icon until it is answered, and
// desktop notifications stay one click away.
import { test, expect } from "./fixtures";
import { twoSides, signIn, openWidget, startChat } from "./helpers";

test("after signing in a screen pop plays a tone, flashes the title and badges the icon, without Enable alerts", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);
  // Count the tones the console starts, and keep its audio contexts to ask their state.
  await agent.addInitScript(() => {
    const seen = window as unknown as { tones: number; contexts: AudioContext[] };
    seen.tones = 0;
    seen.contexts = [];
    const start = OscillatorNode.prototype.start;
    OscillatorNode.prototype.start = function (this: OscillatorNode, when?: number) {
      seen.tones += 1;
      return start.call(this, when);
    };
    const Original = window.AudioContext;
    window.AudioContext = class extends Original {
      constructor(options?: AudioContextOptions) {
        super(options);
        seen.contexts.push(this);
      }
    };
  });
  await signIn(agent);
  await expect(agent.getByRole("button", { name: "Turn on notifications" })).toBeVisible();
  await expect(agent.getByRole("button", { name: "Enable alerts" })).toHaveCount(0);
  const state = () =>
    agent.evaluate(() => (window as unknown as { contexts: AudioContext[] }).contexts.map((c) => c.state));
  expect(await state()).toEqual(["running"]);
  await expect(agent).toHaveTitle("Parlor console");

  const widget = await openWidget(customer);
  await startChat(widget, "Grace Hopper", "Order 1042 is late", "Where is my order?");
  const pop = agent.getByRole("alertdialog", { name: "Incoming chat" });
  await expect(pop).toBeVisible();
  // Announced to screen readers without taking the caret from anyone typing.
  await expect(agent.getByRole("status").filter({ hasText: "Incoming chat from Grace Hopper" })).toHaveText(
    "Incoming chat from Grace Hopper: Order 1042 is late. Accept or Disable.",
  );
  await expect.poll(() => agent.evaluate(() => (window as unknown as { tones: number }).tones)).toBeGreaterThan(0);
  await expect(agent).toHaveTitle("Incoming chat: Grace Hopper");
  await expect(agent).toHaveTitle("Parlor console");
  await expect(agent).toHaveTitle("Incoming chat: Grace Hopper");
  const icon = agent.locator('link[rel="icon"]');
  await expect(icon).toHaveAttribute("href", /d93025/);

  await pop.getByRole("button", { name: "Accept" }).click();
  await expect(pop).toBeHidden();
  await expect(icon).not.toHaveAttribute("href", /d93025/);
  await expect(agent).toHaveTitle("Parlor console");
  await close();
});
