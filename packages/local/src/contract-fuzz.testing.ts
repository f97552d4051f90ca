/** What the contract fuzz tests share: the names no answer of the API may contain. */
import { auditLogsTable, systemConfigTable } from "@enclave/admin/admin.sql";
import { loginAttemptsTable, refreshTokensTable, usersTable } from "@enclave/auth/auth.sql";
import { inboxTable, outboxTable } from "@enclave/core/events/tables";
import { idempotencyKeysTable, paymentsTable, paymentTransactionsTable } from "@enclave/payments/payments.sql";
import { userProfilesTable } from "@enclave/profile/profile.sql";
import { getTableConfig, pgSchema } from "drizzle-orm/pg-core";

/** Every table of the services (with its schema) and every multi-word column. */
export function internalNames(): string[] {
  const tables = [
    usersTable,
    refreshTokensTable,
    loginAttemptsTable,
    userProfilesTable,
    paymentsTable,
    paymentTransactionsTable,
    idempotencyKeysTable,
    auditLogsTable,
    systemConfigTable,
    outboxTable(pgSchema("any")),
    inboxTable(pgSchema("any")),
  ];
  return tables.flatMap((table) => {
    const config = getTableConfig(table);
    const columns = config.columns.map((column) => column.name).filter((name) => name.includes("_"));
    return [
      ...columns,
      ...(config.name.includes("_") ? [config.name] : []),
      ...(config.schema && config.schema !== "any" ? [`${config.schema}.${config.name}`] : []),
    ];
  });
}
