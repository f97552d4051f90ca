-- The audit log is append-only: rows are added (once per event id) and never changed or
-- removed, whichever role the service connects as. (TRUNCATE is not granted to runtime roles.)
CREATE FUNCTION "admin"."audit_logs_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'admin.audit_logs is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "audit_logs_no_update_or_delete" BEFORE UPDATE OR DELETE ON "admin"."audit_logs" FOR EACH ROW EXECUTE FUNCTION "admin"."audit_logs_append_only"();
