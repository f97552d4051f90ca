/**
 * The local events page in a real browser: the local runtime on a real port (as `npm run dev`
 * serves it), Debian's Chromium driven headless through playwright-core. A registration's
 * deliveries appear by themselves, a dead letter is redriven with the page's button, event data
 * is shown as text. Screenshots are left in .artifacts/: events-page.png at the end and
 * events-page-dead-letter.png while the dead letter waits for its redrive.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AUDIT_CONSUMER, type ConsumerProbe, PROFILE_CONSUMER, registerUser, servicesWithProbe } from "./events-page.testing";
import { createLocalRuntime, type LocalRuntime, repositoryRoot } from "./runtime";
import { launchChromium, serveRuntime, testEnvironment } from "./runtime.testing";

const artifacts = join(repositoryRoot, ".artifacts");
const screenshot = join(artifacts, "events-page.png");

describe("the local events page in Chromium", () => {
  const probe: ConsumerProbe = { failing: false };
  let env: Awaited<ReturnType<typeof testEnvironment>> | undefined;
  let runtime: LocalRuntime | undefined;
  let server: Awaited<ReturnType<typeof serveRuntime>> | undefined;
  let browser: Browser | undefined;
  let base = "";

  beforeAll(async () => {
    env = await testEnvironment({ BUS_MAX_ATTEMPTS: "2", BUS_RETRY_BASE_MS: "50" });
    [browser, runtime] = await Promise.all([
      launchChromium("the events page's browser test"),
      createLocalRuntime({ env: env.env, services: servicesWithProbe(probe) }),
    ]);
    server = await serveRuntime(runtime);
    base = server.base;
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await runtime?.close();
    await env?.dispose();
  });

  const overHttp = (path: string, init: RequestInit) => fetch(`${base}${path}`, init);
  const eventRow = (page: Page, correlationId: string) => page.locator('tr.event[data-type="user.registered"]', { hasText: correlationId });
  const delivery = (page: Page, correlationId: string, subscriber: string, status: string) =>
    eventRow(page, correlationId).locator(`.delivery[data-subscriber="${subscriber}"][data-status="${status}"]`);

  test("shows deliveries as they happen, and redrives a dead letter from its button", async () => {
    const page = await browser!.newPage({ viewport: { width: 1500, height: 900 } });
    page.setDefaultTimeout(10_000);
    // Anything the page's script throws, and anything the CSP blocks, shows up here.
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });

    await page.goto(`${base}/_local/events`);
    await page.locator("#status.live").waitFor();

    // Registered after the page opened: it appears without a reload.
    const ada = await registerUser(overHttp, "Ada Lovelace");
    await delivery(page, ada.requestId, PROFILE_CONSUMER, "delivered").waitFor();
    await delivery(page, ada.requestId, AUDIT_CONSUMER, "delivered").waitFor();

    // A profile store that is down: the delivery runs out of attempts and is dead-lettered.
    probe.failing = true;
    const hostile = `<img src=x onerror="document.title='owned'"><b>Mallory</b>`;
    const mallory = await registerUser(overHttp, hostile);
    const deadLetter = page.locator(`tr.dead-letter[data-subscriber="${PROFILE_CONSUMER}"]`, { hasText: mallory.requestId });
    await deadLetter.waitFor();
    expect(await deadLetter.textContent()).toContain("Error: profile store unavailable");
    await delivery(page, mallory.requestId, PROFILE_CONSUMER, "dead").waitFor();
    await delivery(page, mallory.requestId, AUDIT_CONSUMER, "delivered").waitFor();
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "events-page-dead-letter.png"), fullPage: true });

    probe.failing = false;
    await deadLetter.getByRole("button", { name: "Redrive", exact: true }).click();
    await delivery(page, mallory.requestId, PROFILE_CONSUMER, "delivered").waitFor();
    await deadLetter.waitFor({ state: "detached" });
    expect(await delivery(page, mallory.requestId, PROFILE_CONSUMER, "delivered").textContent()).toContain("after 1 redrive");
    expect(runtime!.bus.deadLetters()).toEqual([]);

    // The event's data is user input: it is shown as text and nothing in it runs.
    await eventRow(page, mallory.requestId).getByRole("button", { name: "data" }).click();
    const data = page.locator("tr.data pre");
    await data.waitFor();
    expect(await data.textContent()).toContain(hostile.replaceAll('"', '\\"'));
    expect(await page.locator("main img, main b").count()).toBe(0);
    expect(await page.title()).toBe("Enclave · local events");

    await page.screenshot({ path: screenshot, fullPage: true });
    expect(existsSync(screenshot)).toBe(true);
    expect(problems).toEqual([]);
  });
});
