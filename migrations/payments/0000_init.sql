CREATE SCHEMA "payments";
--> statement-breakpoint
CREATE TABLE "payments"."idempotency_keys" (
	"caller_id" uuid NOT NULL,
	"key" text NOT NULL,
	"fingerprint" text NOT NULL,
	"payment_id" uuid NOT NULL,
	"response_status" integer NOT NULL,
	"response_body" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY("caller_id","key")
);
--> statement-breakpoint
CREATE TABLE "payments"."payment_transactions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "payments"."payment_transactions_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"payment_id" uuid NOT NULL,
	"status" text NOT NULL,
	"status_message" text,
	"psp_transaction_id" text,
	"metadata" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "payment_transactions_status_check" CHECK ("payments"."payment_transactions"."status" in ('pending', 'processing', 'completed', 'failed', 'cancelled'))
);
--> statement-breakpoint
CREATE TABLE "payments"."inbox" (
	"subscriber" text NOT NULL,
	"event_id" uuid NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "inbox_subscriber_event_id_pk" PRIMARY KEY("subscriber","event_id")
);
--> statement-breakpoint
CREATE TABLE "payments"."outbox" (
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
CREATE TABLE "payments"."payments" (
	"id" uuid PRIMARY KEY NOT NULL,
	"sender_id" uuid NOT NULL,
	"recipient_id" uuid NOT NULL,
	"amount" numeric(10, 2) NOT NULL,
	"currency" text DEFAULT 'USD' NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"type" text DEFAULT 'instant' NOT NULL,
	"description" text,
	"metadata" jsonb,
	"scheduled_for" timestamp with time zone,
	"recurrence_interval" text,
	"series_id" uuid,
	"occurrence" integer,
	"next_payment_id" uuid,
	"due_at" timestamp with time zone NOT NULL,
	"psp_transaction_id" text,
	"psp_status" text,
	"failure_reason" text,
	"completed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "payments_amount_positive" CHECK ("payments"."payments"."amount" > 0),
	CONSTRAINT "payments_currency_format" CHECK ("payments"."payments"."currency" ~ '^[A-Z]{3}$'),
	CONSTRAINT "payments_status_check" CHECK ("payments"."payments"."status" in ('pending', 'processing', 'completed', 'failed', 'cancelled')),
	CONSTRAINT "payments_type_check" CHECK ("payments"."payments"."type" in ('instant', 'scheduled', 'recurring')),
	CONSTRAINT "payments_interval_check" CHECK ("payments"."payments"."recurrence_interval" is null or "payments"."payments"."recurrence_interval" in ('daily', 'weekly', 'monthly')),
	CONSTRAINT "payments_not_to_self" CHECK ("payments"."payments"."sender_id" <> "payments"."payments"."recipient_id"),
	CONSTRAINT "payments_schedule_shape" CHECK (("payments"."payments"."type" = 'instant' and "payments"."payments"."scheduled_for" is null and "payments"."payments"."recurrence_interval" is null and "payments"."payments"."series_id" is null)
        or ("payments"."payments"."type" = 'scheduled' and "payments"."payments"."scheduled_for" is not null and "payments"."payments"."recurrence_interval" is null and "payments"."payments"."series_id" is null)
        or ("payments"."payments"."type" = 'recurring' and "payments"."payments"."scheduled_for" is not null and "payments"."payments"."recurrence_interval" is not null and "payments"."payments"."series_id" is not null and "payments"."payments"."occurrence" >= 1))
);
--> statement-breakpoint
ALTER TABLE "payments"."payment_transactions" ADD CONSTRAINT "payment_transactions_payment_id_payments_id_fk" FOREIGN KEY ("payment_id") REFERENCES "payments"."payments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "idempotency_keys_expires_idx" ON "payments"."idempotency_keys" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "payment_transactions_payment_idx" ON "payments"."payment_transactions" USING btree ("payment_id","seq");--> statement-breakpoint
CREATE INDEX "outbox_unpublished_idx" ON "payments"."outbox" USING btree ("created_at") WHERE "payments"."outbox"."published_at" is null;--> statement-breakpoint
CREATE INDEX "payments_sender_created_idx" ON "payments"."payments" USING btree ("sender_id","created_at","id");--> statement-breakpoint
CREATE INDEX "payments_sender_status_created_idx" ON "payments"."payments" USING btree ("sender_id","status","created_at","id");--> statement-breakpoint
CREATE INDEX "payments_recipient_created_idx" ON "payments"."payments" USING btree ("recipient_id","created_at","id");--> statement-breakpoint
CREATE INDEX "payments_recipient_status_created_idx" ON "payments"."payments" USING btree ("recipient_id","status","created_at","id");--> statement-breakpoint
CREATE INDEX "payments_pending_due_idx" ON "payments"."payments" USING btree ("due_at") WHERE "payments"."payments"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "payments_processing_idx" ON "payments"."payments" USING btree ("updated_at") WHERE "payments"."payments"."status" = 'processing';--> statement-breakpoint
CREATE INDEX "payments_recurring_next_idx" ON "payments"."payments" USING btree ("completed_at") WHERE "payments"."payments"."type" = 'recurring' and "payments"."payments"."status" = 'completed' and "payments"."payments"."next_payment_id" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "payments_series_occurrence_key" ON "payments"."payments" USING btree ("series_id","occurrence");