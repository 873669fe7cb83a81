// The composer and the text rules, in both UIs: Enter sends, Shift+Enter does not;
// macros arrive on one line; nothing is markup; www./https:// links; Liquid; typing.
import { test, expect } from "./fixtures";
import { twoSides, signIn, openWidget, startChat, acceptScreenPop } from "./helpers";

const message = { name: "Message", exact: true } as const;

test("the composer sends on Enter, keeps text as text, links www. and https:// URLs and fills in Liquid", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);
  await signIn(agent);

  // An admin writes a macro in Markdown, with a list and a Liquid variable.
  await agent.getByRole("link", { name: "Macros" }).click();
  await agent.getByLabel("Name").fill("Troubleshooting");
  await agent
    .getByLabel("Text (Markdown)")
    .fill("Hi {{customer.first_name}}, please try:\n\n- restart the app\n- sign in **again**");
  await expect(agent.locator(".macro-preview-line")).toContainText(
    "Hi {{customer.first_name}}, please try: • restart the app • sign in again",
  );
  await agent.getByRole("button", { name: "Save macro" }).click();
  await expect(agent.locator(".macro-row")).toContainText("Troubleshooting");
  await agent.locator(".pages").getByRole("link", { name: "Chats" }).click();

  const widget = await openWidget(customer);
  await startChat(widget, "Grace Hopper", "Cannot sign in", "Help please");
  await acceptScreenPop(agent, "Grace Hopper", "Cannot sign in");
  const caseView = agent.getByRole("tabpanel");
  const reply = caseView.getByRole("textbox", message);
  const input = widget.getByRole("textbox", message);
  await expect(widget.locator(".chat-status")).toContainText("You are chatting with Admin");

  // Typing shows on the other side, both ways.
  await input.pressSequentially("Still there");
  await expect(caseView.locator(".typing")).toHaveText("The customer is typing…");
  await reply.pressSequentially("One moment");
  await expect(widget.locator(".typing")).toHaveText("Admin is typing…");
  await input.fill("");
  await reply.fill("");

  // Shift+Enter is a new line; Enter sends.
  await reply.pressSequentially("line one");
  await reply.press("Shift+Enter");
  await reply.pressSequentially("line two");
  await expect(reply).toHaveValue("line one\nline two");
  await expect(widget.locator(".msg-agent")).toHaveCount(0);
  await reply.press("Enter");
  await expect(widget.locator(".msg-agent .msg-body").first()).toHaveText("line one\nline two");
  await expect(reply).toHaveValue("");
  await expect(widget.locator(".typing")).toHaveText("");
  // A blank message is not sent.
  await reply.fill("   ");
  await reply.press("Enter");
  await expect(widget.locator(".msg-agent")).toHaveCount(1);
  await reply.fill("");

  // The macro, picked from the keyboard, arrives on one line with Liquid filled in.
  await caseView.getByRole("button", { name: "Macros" }).click();
  await caseView.getByLabel("Search macros").fill("trouble");
  await caseView.getByLabel("Search macros").press("Enter");
  await expect(reply).toHaveValue("Hi {{customer.first_name}}, please try: • restart the app • sign in again");
  await reply.press("Enter");
  await expect(widget.locator(".msg-agent .msg-body").last()).toHaveText(
    "Hi Grace, please try: • restart the app • sign in again",
  );

  // Markup is text.
  await input.fill("<b>x</b> and *x*");
  await input.press("Enter");
  const literal = caseView.locator(".msg-customer .msg-body").last();
  await expect(literal).toHaveText("<b>x</b> and *x*");
  await expect(literal.locator("b")).toHaveCount(0);
  await expect(widget.locator(".msg-mine .msg-body").last()).toHaveText("<b>x</b> and *x*");

  // www. and https:// become links in both UIs; a plain http:// address does not.
  await reply.fill("See www.example.com/help. Or http://plain.example.com");
  await reply.press("Enter");
  const agentLink = widget.locator(".msg-agent .msg-body").last().getByRole("link");
  await expect(agentLink).toHaveCount(1);
  await expect(agentLink).toHaveText("www.example.com/help");
  await expect(agentLink).toHaveAttribute("href", "https://www.example.com/help");
  await expect(agentLink).toHaveAttribute("target", "_blank");
  await expect(agentLink).toHaveAttribute("rel", "noopener noreferrer");
  await expect(caseView.locator(".msg-mine .msg-body").last().getByRole("link")).toHaveAttribute(
    "href",
    "https://www.example.com/help",
  );
  await input.fill("My order: https://shop.example.org/orders/1042");
  await input.press("Enter");
  await expect(caseView.locator(".msg-customer .msg-body").last().getByRole("link")).toHaveAttribute(
    "href",
    "https://shop.example.org/orders/1042",
  );

  // A Liquid mistake is not sent: the agent sees why under the composer, naming the
  // variable and what there is, and keeps the draft.
  const sentBefore = await widget.locator(".msg-agent").count();
  await reply.fill("Hello {{ customer.frist_name }}");
  await reply.press("Enter");
  const problem = caseView.locator(".composer-problem");
  await expect(problem).toContainText("Not sent.");
  await expect(problem).toContainText("{{ customer.frist_name }} is not a variable (customer has email, first_name, name)");
  await expect(reply).toHaveValue("Hello {{ customer.frist_name }}");
  await expect(widget.locator(".msg-agent")).toHaveCount(sentBefore);

  // Near the limit the composer counts down; over it, it says so before sending.
  await reply.fill("x".repeat(3700));
  await expect(caseView.locator(".composer-count")).toHaveText("300 characters left");
  await reply.fill("x".repeat(4001));
  await reply.press("Enter");
  await expect(caseView.locator(".composer-problem")).toContainText("too long");
  await expect(widget.locator(".msg-agent")).toHaveCount(sentBefore);

  await caseView.getByRole("button", { name: "End chat" }).click();
  await expect(widget.locator(".chat-status")).toContainText("Admin ended the chat.");
  await close();
});

test("each case tab keeps its own draft", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);
  await signIn(agent);
  const second = await customer.context().browser()!.newContext();
  const otherCustomer = await second.newPage();

  const first = await openWidget(customer);
  await startChat(first, "Ada", "First chat", "One");
  await acceptScreenPop(agent, "Ada", "First chat");
  const other = await openWidget(otherCustomer);
  await startChat(other, "Alan", "Second chat", "Two");
  await acceptScreenPop(agent, "Alan", "Second chat");

  const reply = agent.getByRole("tabpanel").getByRole("textbox", message);
  await reply.fill("draft for Alan");
  await agent.locator(".case-tab", { hasText: "Ada" }).click();
  await expect(agent.locator(".case-subject")).toHaveText("First chat");
  await expect(reply).toHaveValue("");
  await reply.fill("draft for Ada");
  await agent.locator(".case-tab", { hasText: "Alan" }).click();
  await expect(reply).toHaveValue("draft for Alan");
  await agent.locator(".case-tab", { hasText: "Ada" }).click();
  await expect(reply).toHaveValue("draft for Ada");

  for (const name of ["Ada", "Alan"]) {
    await agent.locator(".case-tab", { hasText: name }).click();
    await agent.getByRole("tabpanel").getByRole("button", { name: "End chat" }).click();
    await expect(agent.getByRole("tabpanel").locator(".chat-status")).toContainText("Admin ended the chat.");
  }
  await second.close();
  await close();
});
