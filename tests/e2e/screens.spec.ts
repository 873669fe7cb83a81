// The main screens in light and dark mode, on a laptop (1366×768) and a phone
// (390×844), kept as screenshots in the test output for reviewers; and on a phone the
// console is usable: one column, nothing wider than the screen, the composer in view;
// the demo site keeps its launcher on screen and the widget its Start chat button.
import { test, expect } from "./fixtures";
import { signIn, openWidget, startChat, acceptScreenPop } from "./helpers";

const sizes = [
  { name: "laptop", viewport: { width: 1366, height: 768 } },
  { name: "phone", viewport: { width: 390, height: 844 } },
] as const;

for (const colorScheme of ["light", "dark"] as const) {
  for (const size of sizes) {
    test(`screens in ${colorScheme} mode on a ${size.name}`, async ({ browser }, testInfo) => {
      const options = { viewport: size.viewport, colorScheme };
      const agent = await (await browser.newContext(options)).newPage();
      const customer = await (await browser.newContext(options)).newPage();
      const shot = async (page: typeof agent, name: string) =>
        page.screenshot({ path: testInfo.outputPath(`${name}-${colorScheme}-${size.name}.png`) });

      await agent.goto("/console/");
      await expect(agent.getByRole("button", { name: "Sign in" })).toBeVisible();
      await shot(agent, "sign-in");
      await signIn(agent);
      // The demo site: nothing wider than the screen, the launcher wholly on it.
      await customer.goto("/demo");
      const pageOverflow = await customer.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(pageOverflow).toBeLessThanOrEqual(0);
      await expect(customer.getByRole("button", { name: "Open chat" })).toBeInViewport({ ratio: 1 });
      const widget = await openWidget(customer);
      // The form's action is in view without scrolling, however many fields it has.
      await expect(widget.getByRole("button", { name: "Start chat" })).toBeInViewport({ ratio: 1 });
      await shot(customer, "widget-form");
      await startChat(widget, "Grace Hopper", "Order 1042 is late", "Where is my order? It was due on Monday.");
      await expect(agent.getByRole("alertdialog", { name: "Incoming chat" })).toBeVisible();
      await shot(agent, "screen-pop");
      await acceptScreenPop(agent, "Grace Hopper", "Order 1042 is late");
      const caseView = agent.getByRole("tabpanel");
      const reply = caseView.getByRole("textbox", { name: "Message", exact: true });
      await reply.fill("Hello Grace, let me look at order 1042 for you.");
      await reply.press("Enter");
      const input = widget.getByRole("textbox", { name: "Message", exact: true });
      await input.fill("Thank you! It was a birthday present.");
      await input.press("Enter");
      await expect(caseView.locator(".msg-customer").last()).toContainText("birthday");
      await shot(agent, "console-chat");
      await shot(customer, "widget-chat");

      // Usable: nothing sideways to scroll, the reply box on screen.
      const overflow = await agent.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      await expect(reply).toBeInViewport();
      if (size.name === "phone") {
        // Tabs as a list: the chat's tab is a full-width row.
        const tab = await agent.getByRole("tab", { name: /Grace Hopper/ }).boundingBox();
        expect(tab?.width ?? 0).toBeGreaterThan(size.viewport.width * 0.7);
      }
      await agent.context().close();
      await customer.context().close();
    });
  }
}
