import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./packages/auth/src/auth.sql.ts",
  out: "./migrations/auth",
  schemaFilter: ["auth"],
});
