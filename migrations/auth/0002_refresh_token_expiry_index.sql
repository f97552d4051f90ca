-- enclave:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS "refresh_tokens_expires_idx" ON "auth"."refresh_tokens" USING btree ("expires_at");