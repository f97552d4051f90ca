import { describe, expect, test } from "vitest";
import { defineManifest, rateSeconds } from "./manifest";

describe("rateSeconds", () => {
  test("reads EventBridge rate expressions", () => {
    expect(rateSeconds("rate(1 minute)")).toBe(60);
    expect(rateSeconds("rate(5 minutes)")).toBe(300);
    expect(rateSeconds("rate(2 hours)")).toBe(7200);
    expect(rateSeconds("rate(1 hour)")).toBe(3600);
    for (const bad of ["cron(0 * * * ? *)", "rate(minute)", "rate(-1 minutes)", "rate(1 day)", "every minute"]) {
      expect(() => rateSeconds(bad), bad).toThrow(/unsupported schedule/);
    }
  });
});

describe("defineManifest", () => {
  test("keeps the manifest as declared", () => {
    const manifest = defineManifest({ name: "things", prefix: "/things" });
    expect(manifest).toEqual({ name: "things", prefix: "/things" });
  });
});
