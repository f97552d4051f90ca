CREATE SCHEMA "profile";
--> statement-breakpoint
CREATE TABLE "profile"."inbox" (
	"subscriber" text NOT NULL,
	"event_id" uuid NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "inbox_subscriber_event_id_pk" PRIMARY KEY("subscriber","event_id")
);
--> statement-breakpoint
CREATE TABLE "profile"."outbox" (
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
CREATE TABLE "profile"."user_profiles" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"avatar_url" text,
	"phone" text,
	"address" jsonb,
	"bio" text,
	"preferences" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "user_profiles_bio_length_check" CHECK (char_length("profile"."user_profiles"."bio") <= 1000),
	CONSTRAINT "user_profiles_phone_check" CHECK ("profile"."user_profiles"."phone" ~ '^\+[1-9][0-9]{1,14}$'),
	CONSTRAINT "user_profiles_preferences_check" CHECK (jsonb_typeof("profile"."user_profiles"."preferences") = 'object'),
	CONSTRAINT "user_profiles_address_check" CHECK (jsonb_typeof("profile"."user_profiles"."address") = 'object')
);
--> statement-breakpoint
CREATE INDEX "outbox_unpublished_idx" ON "profile"."outbox" USING btree ("created_at") WHERE "profile"."outbox"."published_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "user_profiles_user_id_key" ON "profile"."user_profiles" USING btree ("user_id");