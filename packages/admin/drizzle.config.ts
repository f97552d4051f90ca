import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./packages/admin/src/admin.sql.ts",
  out: "./migrations/admin",
  schemaFilter: ["admin"],
});
