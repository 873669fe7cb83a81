// The first chat, end to end, by clicking and typing: a customer on the demo site and
// an agent in the console, in two separate browser contexts.
import { test, expect } from "./fixtures";
import { twoSides, signIn, openWidget, startChat, acceptScreenPop, endChatAsCustomer } from "./helpers";

test("a customer's chat is routed, accepted, talked through and ended by the customer", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);

  await signIn(agent);
  const widget = await openWidget(customer);
  await startChat(widget, "Grace Hopper", "Order 1042 is late", "Hello, where is my order?");

  await acceptScreenPop(agent, "Grace Hopper", "Order 1042 is late");
  const caseView = agent.getByRole("tabpanel");
  await expect(caseView.locator(".case-subject")).toHaveText("Order 1042 is late");
  await expect(caseView.locator(".msg-customer")).toContainText("Hello, where is my order?");

  // The customer is told the agent joined.
  await expect(widget.locator(".chat-status")).toContainText("You are chatting with Admin");
  await expect(widget.locator(".msg-system")).toContainText("Admin joined the chat.");

  // New messages add lines; the lines already shown keep their nodes (and a reader's
  // selection in them) on both sides.
  const mark = (el: Element) => ((el as Element & { kept?: boolean }).kept = true);
  const marked = (el: Element) => (el as Element & { kept?: boolean }).kept === true;
  await widget.locator(".msg").first().evaluate(mark);
  await caseView.locator(".msg").first().evaluate(mark);

  // Agent to customer: Enter sends.
  const reply = caseView.getByRole("textbox", { name: "Message", exact: true });
  await reply.fill("Hi Grace, let me check that for you.");
  await reply.press("Enter");
  await expect(widget.locator(".msg-agent")).toContainText("Hi Grace, let me check that for you.");

  // Customer to agent.
  const input = widget.getByRole("textbox", { name: "Message", exact: true });
  await input.fill("Thanks! It was due on Monday.");
  await input.press("Enter");
  await expect(caseView.locator(".msg-customer").last()).toContainText("It was due on Monday.");
  await expect(widget.locator(".msg-pending")).toHaveCount(0);
  expect(await widget.locator(".msg").first().evaluate(marked)).toBe(true);
  expect(await caseView.locator(".msg").first().evaluate(marked)).toBe(true);

  // End chat asks once: "Keep chatting" changes nothing and gives the keyboard back
  // to the message box.
  await widget.getByRole("button", { name: "End chat" }).click();
  await expect(widget.getByText("End this chat?")).toBeVisible();
  await expect(widget.getByRole("button", { name: "Keep chatting" })).toBeFocused();
  await widget.getByRole("button", { name: "Keep chatting" }).click();
  await expect(widget.getByText("End this chat?")).toBeHidden();
  await expect(widget.getByRole("textbox", { name: "Message", exact: true })).toBeFocused();
  await expect(widget.locator(".chat-status")).toContainText("You are chatting with");
  // The customer ends the chat: both sides see it at once.
  await endChatAsCustomer(widget);
  await expect(widget.getByRole("button", { name: "Start a new chat" })).toBeVisible();
  await expect(caseView.locator(".chat-status")).toContainText("The customer ended the chat.");
  await expect(caseView.getByRole("textbox", { name: "Message", exact: true })).toBeDisabled();
  await expect(agent.locator(".case-tab", { hasText: "Grace Hopper" })).toContainText("Ended");

  await close();
});

test("the agent ends a chat and the customer sees it", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);

  await signIn(agent);
  const widget = await openWidget(customer);
  await startChat(widget, "Alan Turing", "Password reset", "I cannot sign in.");
  await acceptScreenPop(agent, "Alan Turing", "Password reset");

  const caseView = agent.getByRole("tabpanel");
  await expect(caseView.locator(".case-subject")).toHaveText("Password reset");
  // The customer is being asked "End this chat?" when the agent ends it: the question
  // goes, the keyboard lands on Start a new chat, and the next chat starts without it.
  await widget.getByRole("button", { name: "End chat" }).click();
  await expect(widget.getByText("End this chat?")).toBeVisible();
  await caseView.getByRole("button", { name: "End chat" }).click();
  await expect(caseView.locator(".chat-status")).toContainText("Admin ended the chat.");
  await expect(widget.locator(".chat-status")).toContainText("Admin ended the chat.");
  await expect(widget.locator(".msg-system").last()).toHaveText("Admin ended the chat.");
  await expect(widget.getByRole("button", { name: "Start a new chat" })).toBeFocused();
  await widget.getByRole("button", { name: "Start a new chat" }).click();
  await startChat(widget, "Alan Turing", "Another question", "One more thing.");
  await expect(widget.getByText("End this chat?")).toBeHidden();
  await expect(widget.getByRole("button", { name: "End chat" })).toBeVisible();

  await close();
});
