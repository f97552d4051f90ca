CREATE SCHEMA "admin";
--> statement-breakpoint
CREATE TABLE "admin"."inbox" (
	"subscriber" text NOT NULL,
	"event_id" uuid NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "inbox_subscriber_event_id_pk" PRIMARY KEY("subscriber","event_id")
);
--> statement-breakpoint
CREATE TABLE "admin"."outbox" (
	"id" uuid PRIMARY KEY NOT NULL,
	"source" text NOT NULL,
	"type" text NOT NULL,
	"detail" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"published_at" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text
);
--> statement-breakpoint
CREATE TABLE "admin"."audit_logs" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid,
	"actor_id" uuid,
	"action" text NOT NULL,
	"resource_type" text,
	"resource_id" text,
	"details" jsonb,
	"ip_address" text,
	"user_agent" text,
	"correlation_id" text,
	"created_at" timestamp (3) with time zone NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "admin"."system_config" (
	"key" text PRIMARY KEY NOT NULL,
	"value" jsonb NOT NULL,
	"description" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by" uuid,
	CONSTRAINT "system_config_key_check" CHECK ("admin"."system_config"."key" ~ '^[a-z0-9][a-z0-9._-]{0,127}$')
);
--> statement-breakpoint
CREATE INDEX "outbox_unpublished_idx" ON "admin"."outbox" USING btree ("created_at") WHERE "admin"."outbox"."published_at" is null;--> statement-breakpoint
CREATE INDEX "audit_logs_created_idx" ON "admin"."audit_logs" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "audit_logs_user_created_idx" ON "admin"."audit_logs" USING btree ("user_id","created_at","id");--> statement-breakpoint
CREATE INDEX "audit_logs_action_created_idx" ON "admin"."audit_logs" USING btree ("action","created_at","id");--> statement-breakpoint
CREATE INDEX "audit_logs_resource_created_idx" ON "admin"."audit_logs" USING btree ("resource_type","created_at","id");