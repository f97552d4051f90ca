import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./packages/profile/src/profile.sql.ts",
  out: "./migrations/profile",
  schemaFilter: ["profile"],
});
