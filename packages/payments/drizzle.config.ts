import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./packages/payments/src/payments.sql.ts",
  out: "./migrations/payments",
  schemaFilter: ["payments"],
});
