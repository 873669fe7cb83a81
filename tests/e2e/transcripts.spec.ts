// A long chat comes a page at a time: a reloaded widget or console shows the latest
// page with an "Earlier messages" button above it, and the button brings the rest
// without moving what the reader was looking at.
import { test, expect } from "./fixtures";
import { twoSides, signIn, openWidget, startChat, acceptScreenPop } from "./helpers";

const message = { name: "Message", exact: true } as const;
const REPLIES = 60;
// The first message, "Admin joined the chat.", then the replies.
const LAST = 2 + REPLIES;
const PAGE = 50;

test("a long chat opens on its latest page and earlier pages load above on request, in the widget and the console", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);
  await signIn(agent);
  const widget = await openWidget(customer);
  await startChat(widget, "Grace Hopper", "A long story", "It began like this");
  await acceptScreenPop(agent, "Grace Hopper", "A long story");
  const caseView = agent.getByRole("tabpanel");
  const reply = caseView.getByRole("textbox", message);
  for (let n = 1; n <= REPLIES; n++) {
    await reply.fill(`Reply ${n}`);
    await reply.press("Enter");
  }
  await expect(widget.locator(".msg-body").last()).toHaveText(`Reply ${REPLIES}`);

  // The customer reloads (the panel opens again by itself): the latest page, and the
  // button for the rest.
  await customer.reload();
  const earlier = widget.getByRole("button", { name: "Earlier messages" });
  await expect(widget.locator(".msg-body").last()).toHaveText(`Reply ${REPLIES}`);
  await expect(widget.locator(".msg[data-seq]")).toHaveCount(PAGE);
  await expect(widget.locator(".msg[data-seq]").first()).toHaveAttribute("data-seq", String(LAST - PAGE + 1));
  await expect(widget.getByText("It began like this")).toHaveCount(0);
  await earlier.click();
  await expect(widget.locator(".msg[data-seq]")).toHaveCount(LAST);
  await expect(widget.getByText("It began like this")).toBeVisible();
  await expect(earlier).toBeHidden();
  // The chat goes on as before underneath.
  await widget.getByRole("textbox", message).fill("Still reading");
  await widget.getByRole("textbox", message).press("Enter");
  await expect(caseView.locator(".msg-body").last()).toHaveText("Still reading");

  // The agent reloads: the same for the console's case tab.
  await agent.reload();
  await expect(agent.locator(".link-state")).toHaveText("Connected");
  const tab = agent.getByRole("tabpanel");
  await expect(tab.locator(".msg-body").last()).toHaveText("Still reading");
  await expect(tab.locator(".msg[data-seq]")).toHaveCount(PAGE);
  const firstShown = tab.locator(".msg[data-seq]").first();
  const seq = await firstShown.getAttribute("data-seq");
  await tab.getByRole("button", { name: "Earlier messages" }).click();
  await expect(tab.locator(".msg[data-seq]")).toHaveCount(LAST + 1);
  await expect(tab.getByRole("button", { name: "Earlier messages" })).toBeHidden();
  // What the agent was reading stays in view; the page went above it.
  await expect(tab.locator(`.msg[data-seq="${seq}"]`)).toBeInViewport();
  await expect(tab.locator(".msg[data-seq]").first()).toHaveAttribute("data-seq", "1");
  await close();
});
