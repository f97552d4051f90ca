/**
 * The local API docs in a real browser: every service on a real port with the development seed,
 * as `npm run dev` serves them, and Debian's Chromium driven headless through playwright-core.
 * Someone who has never read the API registers with the documented example as it stands, signs in
 * with the login example, authorizes with the token Swagger UI shows, and reads their account
 * back, all through "Try it out". Screenshots are left in .artifacts/: docs-register.png after the
 * registration, docs-me.png after GET /auth/me.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLocalRuntime, type LocalRuntime, repositoryRoot } from "./runtime";
import { launchChromium, serveRuntime, testEnvironment } from "./runtime.testing";

const artifacts = join(repositoryRoot, ".artifacts");

describe("Try it out in the local API docs, in Chromium", () => {
  let env: Awaited<ReturnType<typeof testEnvironment>> | undefined;
  let runtime: LocalRuntime | undefined;
  let server: Awaited<ReturnType<typeof serveRuntime>> | undefined;
  let browser: Browser | undefined;
  let base = "";

  beforeAll(async () => {
    // A fresh DATA_DIR and database on every run: the documented example's email is never taken
    // yet, so registering it as it stands answers 201 every time.
    env = await testEnvironment({ SEED: "development" });
    [browser, runtime] = await Promise.all([launchChromium("the API docs' browser test"), createLocalRuntime({ env: env.env })]);
    server = await serveRuntime(runtime);
    base = server.base;
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await runtime?.close();
    await env?.dispose();
  });

  /**
   * Expands an auth operation, presses "Try it out" then "Execute" with whatever the form holds by
   * default, and reads the answer the page shows (not the network's): status and JSON body.
   */
  async function tryItOut(page: Page, operationId: string) {
    const operation = page.locator(`#operations-auth-${operationId}`);
    await operation.locator(".opblock-summary-control").click();
    await operation.locator(".try-out__btn").click();
    // The body editor, if the operation has one, renders together with Execute.
    const execute = operation.locator("button.execute");
    await execute.waitFor();
    const requestBody = operation.locator("textarea.body-param__text");
    const sent = (await requestBody.count()) > 0 ? await requestBody.inputValue() : undefined;
    await execute.click();
    const answer = operation.locator(".live-responses-table .response");
    await answer.waitFor();
    const status = (await answer.locator(".response-col_status").textContent())?.trim();
    const text = (await answer.locator(".response-col_description .highlight-code pre").first().textContent()) ?? "";
    return { operation, answer, sent, status, body: JSON.parse(text) as Record<string, unknown> };
  }

  /** The operation from its summary down to the live answer: the documented responses below it only add length. */
  async function screenshotAnswer(page: Page, shown: { operation: Locator; answer: Locator }, file: string) {
    await shown.operation.scrollIntoViewIfNeeded();
    const [top, bottom, scrollY] = await Promise.all([shown.operation.boundingBox(), shown.answer.boundingBox(), page.evaluate("window.scrollY")]);
    if (!top || !bottom) throw new Error(`nothing to screenshot for ${file}: the operation is not visible`);
    const clip = { x: top.x, y: top.y + (scrollY as number), width: top.width, height: bottom.y + bottom.height - top.y + 8 };
    await page.screenshot({ path: join(artifacts, file), fullPage: true, clip });
  }

  test("registers with the documented example, authorizes with its token, and reads the account back", async () => {
    const page = await browser!.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(10_000);
    // Anything the page's script throws, and any request of the page that fails, shows up here.
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()} (${message.location().url})`);
    });
    mkdirSync(artifacts, { recursive: true });

    await page.goto(`${base}/docs`);
    await page.locator(".topbar select").selectOption({ label: "auth" });
    await page.locator("#operations-auth-registerUser").waitFor();

    const register = await tryItOut(page, "registerUser");
    await screenshotAnswer(page, register, "docs-register.png");
    expect(JSON.parse(register.sent ?? "")).toEqual({ email: "ada@example.com", password: "correct-horse-battery", name: "Ada" });
    expect(register.status).toBe("201");
    expect(register.body.accessToken).toEqual(expect.any(String));
    const email = (register.body.user as { email: string }).email;
    expect(email).toBe("ada@example.com");

    const login = await tryItOut(page, "login");
    expect(JSON.parse(login.sent ?? "")).toMatchObject({ email });
    expect(login.status).toBe("200");
    expect(login.body.accessToken).toEqual(expect.any(String));

    await page.locator(".scheme-container .btn.authorize").click();
    const dialog = page.locator(".modal-ux");
    const bearer = dialog.locator(".auth-container").filter({ hasText: "(http, Bearer)" });
    await bearer.locator("#auth-bearer-value").fill(register.body.accessToken as string);
    await bearer.locator("button.authorize").click();
    await bearer.getByText("Authorized", { exact: true }).waitFor();
    await dialog.locator("button.btn-done").click();
    await dialog.waitFor({ state: "detached" });

    const me = await tryItOut(page, "getMe");
    await screenshotAnswer(page, me, "docs-me.png");
    expect(me.status).toBe("200");
    expect(me.body).toMatchObject({ user: { email, name: "Ada", role: "CUSTOMER" } });

    expect(problems).toEqual([]);
  });
});
