import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { uuidv7 } from "../ids";
import type { ApiGatewayV2Event } from "../lambda-http";

/**
 * Events as AWS delivers them to our Lambdas, built from the recorded samples in fixtures/:
 * the SAM API Gateway HTTP API (payload 2.0) template and an EventBridge event.
 */

const fixtures = resolve(import.meta.dirname, "../../../../fixtures");
const apiGatewayTemplate = readFileSync(resolve(fixtures, "apigw-v2-http-api.template.json"), "utf8");
const eventBridgeSampleText = readFileSync(resolve(fixtures, "eventbridge-event.sample.json"), "utf8");

export interface ApiGatewayEventOptions {
  method: string;
  /** With or without the leading slash. */
  path: string;
  /** The request body as text; absent means no body. */
  body?: string;
  /** Base64-encode the body, as API Gateway does by default (true). */
  base64?: boolean;
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  /** Added to (and overriding) the sample's headers. */
  headers?: Record<string, string>;
  /** Replaces the sample's query string (rawQueryString and queryStringParameters). */
  query?: string;
}

/**
 * The SAM sample event with its placeholders filled in. Unless replaced, it keeps what the sample
 * carries: cookies, a comma-joined repeated header, repeated query parameters.
 */
export function apiGatewayEvent(options: ApiGatewayEventOptions): ApiGatewayV2Event {
  const event = JSON.parse(
    apiGatewayTemplate
      .replaceAll("{{{path}}}", options.path.replace(/^\//, ""))
      .replaceAll("{{{method}}}", options.method)
      .replaceAll("{{{stage}}}", "$default")
      .replaceAll("{{{account_id}}}", "123456789012")
      .replaceAll("{{{dns_suffix}}}", "amazonaws.com")
      .replaceAll("{{{body}}}", ""),
  ) as ApiGatewayV2Event;
  const base64 = options.base64 ?? true;
  event.body = options.body === undefined ? undefined : base64 ? Buffer.from(options.body, "utf8").toString("base64") : options.body;
  event.isBase64Encoded = options.body !== undefined && base64;
  event.headers = {
    ...event.headers,
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    ...options.headers,
  };
  if (options.query !== undefined) {
    event.rawQueryString = options.query;
    event.queryStringParameters = Object.fromEntries(new URLSearchParams(options.query));
  }
  return event;
}

/** The recorded EventBridge sample as is: an EC2 state-change notification, delivered by a replay. */
export function eventBridgeSample(): Record<string, unknown> {
  return JSON.parse(eventBridgeSampleText) as Record<string, unknown>;
}

export interface EventBridgeEventOptions {
  /** The publishing service's source, e.g. `enclave.auth`. */
  source: string;
  detailType: string;
  /** Delivered by an archive replay: carries `replay-name`. */
  replay?: boolean;
}

/**
 * The EventBridge sample (hyphenated `detail-type`, `detail` an object) carrying `detail` as one
 * of our services publishes it. Every call gets a new EventBridge id, as every delivery does;
 * consumers dedupe on `detail.id`.
 */
export function eventBridgeEvent(detail: unknown, options: EventBridgeEventOptions): Record<string, unknown> {
  const { "replay-name": _replay, ...base } = eventBridgeSample();
  return {
    ...base,
    id: uuidv7(),
    source: options.source,
    "detail-type": options.detailType,
    account: "123456789012",
    region: "us-east-1",
    time: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    resources: [],
    detail,
    ...(options.replay ? { "replay-name": "enclave-test-archive-replay" } : {}),
  };
}
