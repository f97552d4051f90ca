import { log } from "./log";

/**
 * API Gateway HTTP API (payload format 2.0) in front of a Hono app, built for cold starts.
 *
 * Node implements the fetch classes (`Headers`, `Request`, `Response`) in a bundled library that
 * it loads the first time any of them is touched, which costs a Lambda cold start tens of
 * milliseconds before the first response. `handle` gives the app a small request object that
 * HonoRequest reads (url, method, headers, body), and `installFetchGlobals` replaces the global
 * `Headers` and `Response` (Hono constructs both by their global names) with small classes that
 * keep a JSON body as the string it was rendered to. What they do not implement themselves
 * (parsing form data, `Response.error()`) is handed to Node's classes, loaded at that moment.
 *
 * Events in other formats (REST API v1, ALB) go to Hono's own adapter.
 */

/** The API Gateway HTTP API event (payload format 2.0); Lambda function URLs send the same. */
export interface ApiGatewayV2Event {
  version: string;
  routeKey?: string;
  rawPath: string;
  rawQueryString?: string;
  /** Request cookies, split out of the Cookie header. */
  cookies?: string[];
  /** Lower-case names; repeated headers joined with commas. */
  headers?: Record<string, string | undefined>;
  queryStringParameters?: Record<string, string | undefined>;
  pathParameters?: Record<string, string | undefined>;
  stageVariables?: Record<string, string | undefined>;
  requestContext: {
    domainName?: string;
    http: { method: string; path: string; protocol?: string; sourceIp?: string; userAgent?: string };
    requestId?: string;
    stage?: string;
    [key: string]: unknown;
  };
  body?: string | null;
  isBase64Encoded?: boolean;
}

export interface ApiGatewayV2Result {
  statusCode: number;
  headers: Record<string, string>;
  /** Set-Cookie values, one per cookie (API Gateway writes one header each). */
  cookies?: string[];
  body: string;
  isBase64Encoded: boolean;
}

/** What `handle` needs of an app: Hono's `fetch`. */
export interface FetchApp {
  fetch(request: Request, env?: unknown, executionContext?: undefined): Response | Promise<Response>;
}

export interface HandleOptions {
  /** Whether a response of this content type is returned base64-encoded (default: anything not text, JSON or XML). */
  isContentTypeBinary?: (contentType: string) => boolean;
}

// ---------------------------------------------------------------------------------------------
// Headers

const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** NUL, CR, LF, or anything outside Latin-1 (header values are byte strings). */
const invalidValuePattern = /[\0\r\n\u0100-\uffff]/;
const edgeWhitespace = /^[\t\n\r ]+|[\t\n\r ]+$/g;

function headerName(name: string): string {
  const text = String(name);
  if (!tokenPattern.test(text)) throw new TypeError(`Invalid header name: "${text}"`);
  return text.toLowerCase();
}

function headerValue(value: string): string {
  const text = String(value).replace(edgeWhitespace, "");
  if (invalidValuePattern.test(text)) throw new TypeError("Invalid header value");
  return text;
}

const tagOf = (value: unknown) => Object.prototype.toString.call(value);

/** What the Headers constructor accepts: headers, [name, value] pairs or a record. */
export type HeadersLike = Headers | LightHeaders | Iterable<readonly [string, string] | string[]> | Record<string, string>;

/**
 * The fetch `Headers` class: case-insensitive names, repeated values joined with ", " except
 * Set-Cookie, which keeps one entry per cookie; iteration sorted by name, as Node's does.
 */
export class LightHeaders {
  #values = new Map<string, string>();
  #cookies: string[] = [];

  constructor(init?: HeadersLike | null) {
    if (init === undefined || init === null) return;
    if (typeof init !== "object") throw new TypeError("Headers init must be an object");
    if (#values in init) {
      // As Node's class does, a copy appends each value again, which trims joined values.
      for (const [name, value] of init.#values) this.#values.set(name, value.replace(edgeWhitespace, ""));
      this.#cookies = [...init.#cookies];
    } else if (Symbol.iterator in init) {
      for (const pair of init as Iterable<Iterable<string>>) {
        const items = [...pair];
        if (items.length !== 2) throw new TypeError("Headers init pairs must have exactly two items");
        this.append(items[0] as string, items[1] as string);
      }
    } else {
      const record = init as Record<string, string>;
      for (const name of Object.keys(record)) this.append(name, record[name] as string);
    }
  }

  static [Symbol.hasInstance](value: unknown): boolean {
    // Headers from Node's own classes (a fetch() response's) are Headers too.
    return typeof value === "object" && value !== null && (#values in value || tagOf(value) === "[object Headers]");
  }

  get [Symbol.toStringTag]() {
    return "Headers";
  }

  append(name: string, value: string): void {
    const key = headerName(name);
    const text = headerValue(value);
    if (key === "set-cookie") {
      this.#cookies.push(text);
      return;
    }
    const existing = this.#values.get(key);
    this.#values.set(key, existing === undefined ? text : `${existing}, ${text}`);
  }

  set(name: string, value: string): void {
    const key = headerName(name);
    const text = headerValue(value);
    if (key === "set-cookie") this.#cookies = [text];
    else this.#values.set(key, text);
  }

  delete(name: string): void {
    const key = headerName(name);
    if (key === "set-cookie") this.#cookies = [];
    else this.#values.delete(key);
  }

  get(name: string): string | null {
    const key = headerName(name);
    if (key === "set-cookie") return this.#cookies.length > 0 ? this.#cookies.join(", ") : null;
    return this.#values.get(key) ?? null;
  }

  has(name: string): boolean {
    const key = headerName(name);
    return key === "set-cookie" ? this.#cookies.length > 0 : this.#values.has(key);
  }

  getSetCookie(): string[] {
    return [...this.#cookies];
  }

  forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void {
    for (const [name, value] of this.#sorted()) callback.call(thisArg, value, name, this as unknown as Headers);
  }

  entries(): IterableIterator<[string, string]> {
    return this.#sorted()[Symbol.iterator]();
  }

  keys(): IterableIterator<string> {
    return this.#sorted()
      .map(([name]) => name)
      [Symbol.iterator]();
  }

  values(): IterableIterator<string> {
    return this.#sorted()
      .map(([, value]) => value)
      [Symbol.iterator]();
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** A snapshot, sorted by name; each Set-Cookie value is its own entry. */
  #sorted(): [string, string][] {
    const names = [...this.#values.keys()];
    if (this.#cookies.length > 0) names.push("set-cookie");
    names.sort();
    const entries: [string, string][] = [];
    for (const name of names) {
      if (name === "set-cookie") for (const cookie of this.#cookies) entries.push([name, cookie]);
      else entries.push([name, this.#values.get(name) as string]);
    }
    return entries;
  }
}

// ---------------------------------------------------------------------------------------------
// Bodies

/** A body held in memory: kept as given (a JSON string stays a string until API Gateway needs it). */
type Buffered = string | Uint8Array | Blob;

/** Streams handed out by `.body`, with what they would produce, so copying a response stays cheap. */
const streamSources = new WeakMap<ReadableStream<Uint8Array>, { source: Buffered; pulled: boolean }>();

function streamOf(source: Buffered): ReadableStream<Uint8Array> {
  const entry = { source, pulled: false };
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        entry.pulled = true;
        controller.enqueue(await bytesOf(source));
        controller.close();
      },
    },
    // Nothing is read ahead: the source is only consumed when someone reads the stream.
    { highWaterMark: 0 },
  );
  streamSources.set(stream, entry);
  return stream;
}

async function bytesOf(source: Buffered | ReadableStream<Uint8Array>): Promise<Uint8Array> {
  if (typeof source === "string") return Buffer.from(source, "utf8");
  if (source instanceof Uint8Array) return source;
  if (tagOf(source) === "[object ReadableStream]") return readStream(source as ReadableStream<Uint8Array>);
  return new Uint8Array(await (source as Blob).arrayBuffer());
}

async function readStream(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!(value instanceof Uint8Array)) throw new TypeError("A body stream must produce Uint8Array chunks");
    chunks.push(value);
  }
  return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
}

/** UTF-8 decoding as the fetch classes do it: a leading byte order mark is dropped. */
function utf8(bytes: Uint8Array): string {
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, bytes.byteLength - start).toString("utf8");
}

function exactArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** FormData encoded as multipart/form-data, the way a fetch body is. */
function multipart(form: FormData): { body: Blob; type: string } {
  const boundary = `----formdata-enclave-${Math.random().toString().slice(2, 13).padStart(11, "0")}`;
  const lines = (text: string) => text.replace(/\r?\n|\r/g, "\r\n");
  const quote = (text: string) => text.replace(/\n/g, "%0A").replace(/\r/g, "%0D").replace(/"/g, "%22");
  const parts: (string | Blob)[] = [];
  for (const [name, value] of form) {
    const disposition = `--${boundary}\r\nContent-Disposition: form-data; name="${quote(lines(name))}"`;
    if (typeof value === "string") {
      parts.push(`${disposition}\r\n\r\n${lines(value)}\r\n`);
    } else {
      const file = value as File;
      parts.push(`${disposition}; filename="${quote(file.name)}"\r\nContent-Type: ${file.type || "application/octet-stream"}\r\n\r\n`, file, "\r\n");
    }
  }
  parts.push(`--${boundary}--\r\n`);
  return { body: new Blob(parts), type: `multipart/form-data; boundary=${boundary}` };
}

let nativeResponse: Promise<typeof Response> | undefined;

/**
 * Node's own Response class, for what the light one does not implement. Once the global has been
 * replaced, the class is reached through a response of Node's fetch (a data: URL, no network).
 */
function nativeResponseClass(): Promise<typeof Response> {
  const current = globalThis.Response as unknown;
  if (current !== LightResponse) return Promise.resolve(current as typeof Response);
  nativeResponse ??= fetch("data:,").then((response) => response.constructor as typeof Response);
  return nativeResponse;
}

/** Body handling shared by the request and the response: buffered when possible, a stream when given one. */
abstract class LightBody {
  #source: Buffered | null;
  #stream: ReadableStream<Uint8Array> | null;
  #used = false;

  constructor(source: Buffered | ReadableStream<Uint8Array> | null) {
    this.#source = null;
    this.#stream = null;
    this.replaceBody(source);
  }

  /** Sets the body; a pristine stream of another light body is taken over as what it would produce. */
  protected replaceBody(source: Buffered | ReadableStream<Uint8Array> | null): void {
    const stream = source !== null && tagOf(source) === "[object ReadableStream]" ? (source as ReadableStream<Uint8Array>) : null;
    const adopted = stream ? streamSources.get(stream) : undefined;
    if (stream && adopted && !adopted.pulled && !stream.locked) {
      // A copy of a light body (`new Response(res.body, res)`).
      adopted.pulled = true;
      this.#source = adopted.source;
      this.#stream = null;
    } else {
      this.#source = stream ? null : (source as Buffered | null);
      this.#stream = stream;
    }
    this.#used = false;
  }

  abstract readonly headers: Headers;

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#stream === null && this.#source !== null) this.#stream = streamOf(this.#source);
    return this.#stream;
  }

  get bodyUsed(): boolean {
    if (this.#used) return true;
    if (this.#stream === null) return false;
    const entry = streamSources.get(this.#stream);
    return entry ? entry.pulled : this.#stream.locked;
  }

  /** The body for one reader; a second read fails, as with the fetch classes. */
  protected takeBody(): Buffered | ReadableStream<Uint8Array> | null {
    if (this.bodyUsed) throw new TypeError("Body is unusable: Body has already been read");
    this.#used = true;
    const stream = this.#stream;
    if (stream === null) return this.#source;
    const entry = streamSources.get(stream);
    if (entry && !stream.locked) {
      entry.pulled = true;
      return entry.source;
    }
    return stream;
  }

  /** The body for a clone: streams are teed, buffered bodies shared (they are never mutated). */
  protected cloneBody(): Buffered | ReadableStream<Uint8Array> | null {
    if (this.bodyUsed) throw new TypeError("Body has already been consumed");
    const stream = this.#stream;
    if (stream === null) return this.#source;
    const entry = streamSources.get(stream);
    if (entry) return entry.source;
    const [mine, theirs] = stream.tee();
    this.#stream = mine;
    return theirs;
  }

  async text(): Promise<string> {
    const source = this.takeBody();
    if (source === null) return "";
    if (typeof source === "string") return source;
    return utf8(await bytesOf(source));
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    const source = this.takeBody();
    if (source === null) return new Uint8Array(0);
    return new Uint8Array(exactArrayBuffer(await bytesOf(source)));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.bytes()).buffer;
  }

  async blob(): Promise<Blob> {
    return new Blob([await this.bytes()], { type: this.headers.get("content-type") ?? "" });
  }

  async formData(): Promise<FormData> {
    const bytes = await this.bytes();
    const type = this.headers.get("content-type");
    const Native = await nativeResponseClass();
    return new Native(bytes, type ? { headers: { "content-type": type } } : {}).formData();
  }

  /** What API Gateway returns: the text, or base64 for a binary body. */
  async resultBody(base64: boolean): Promise<string> {
    const source = this.takeBody();
    if (source === null) return "";
    if (typeof source === "string" && !base64) return source;
    const bytes = typeof source === "string" ? Buffer.from(source, "utf8") : await bytesOf(source);
    return base64 ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64") : utf8(bytes);
  }
}

// ---------------------------------------------------------------------------------------------
// Response

const nullBodyStatuses = new Set([101, 103, 204, 205, 304]);
const redirectStatuses = new Set([301, 302, 303, 307, 308]);

/** A response body as given, with the content type it implies when none is set. */
function extractBody(body: unknown): { source: Buffered | ReadableStream<Uint8Array> | null; type?: string } {
  if (body === null || body === undefined) return { source: null };
  if (typeof body === "string") return { source: body, type: "text/plain;charset=UTF-8" };
  if (body instanceof ArrayBuffer) return { source: new Uint8Array(body.slice(0)) };
  if (ArrayBuffer.isView(body)) return { source: new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer) };
  switch (tagOf(body)) {
    case "[object ReadableStream]":
      return { source: body as ReadableStream<Uint8Array> };
    case "[object Blob]":
    case "[object File]":
      return (body as Blob).type ? { source: body as Blob, type: (body as Blob).type } : { source: body as Blob };
    case "[object URLSearchParams]":
      return { source: String(body), type: "application/x-www-form-urlencoded;charset=UTF-8" };
    case "[object FormData]": {
      const { body: blob, type } = multipart(body as FormData);
      return { source: blob, type };
    }
    default:
      return { source: String(body), type: "text/plain;charset=UTF-8" };
  }
}

/**
 * The fetch `Response` class for a function's responses: bodies stay as given (strings, bytes,
 * blobs, streams) until read, and `.body` becomes a stream only when someone asks for it.
 */
export class LightResponse extends LightBody {
  override readonly headers: Headers;
  #status: number;
  #statusText: string;
  #type: "default" | "error" = "default";

  constructor(body?: unknown, init?: ResponseInit | Response | LightResponse | null) {
    const { source, type } = extractBody(body);
    super(source);
    const status = init?.status ?? 200;
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`init["status"] must be in the range of 200 to 599, inclusive.`);
    const statusText = init?.statusText ?? "";
    if (/[^\t\x20-\x7e\x80-\xff]/.test(statusText)) throw new TypeError("Invalid statusText");
    if (source !== null && nullBodyStatuses.has(status)) throw new TypeError(`Response with null body status ${status} cannot have a body`);
    this.#status = status;
    this.#statusText = statusText;
    const headers = new LightHeaders(init?.headers as HeadersLike | undefined);
    if (type && !headers.has("content-type")) headers.set("content-type", type);
    this.headers = headers as unknown as Headers;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // Node's own responses (what fetch() returns) are Responses too.
    return typeof value === "object" && value !== null && (LightResponse.isLight(value) || tagOf(value) === "[object Response]");
  }

  /** True for instances of this class only (instanceof also admits Node's responses). */
  static isLight(value: unknown): value is LightResponse {
    return typeof value === "object" && value !== null && #status in value;
  }

  static json(data: unknown, init?: ResponseInit): LightResponse {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError("Value is not JSON serializable");
    const headers = new LightHeaders(init?.headers as HeadersLike | undefined);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
    return new LightResponse(text, { ...init, headers: headers as unknown as Headers });
  }

  static redirect(url: string | URL, status = 302): LightResponse {
    if (!redirectStatuses.has(status)) throw new RangeError(`Invalid redirect status: ${status}`);
    return new LightResponse(null, { status, headers: { location: new URL(url).href } });
  }

  static error(): LightResponse {
    const response = new LightResponse(null, { status: 200 });
    response.#status = 0;
    response.#type = "error";
    return response;
  }

  get [Symbol.toStringTag]() {
    return "Response";
  }

  get status(): number {
    return this.#status;
  }

  get statusText(): string {
    return this.#statusText;
  }

  get ok(): boolean {
    return this.#status >= 200 && this.#status <= 299;
  }

  get type(): "default" | "error" {
    return this.#type;
  }

  get url(): string {
    return "";
  }

  get redirected(): boolean {
    return false;
  }

  clone(): LightResponse {
    const copy = new LightResponse(null, { headers: this.headers });
    copy.#status = this.#status;
    copy.#statusText = this.#statusText;
    copy.#type = this.#type;
    copy.replaceBody(this.cloneBody());
    return copy;
  }
}

// ---------------------------------------------------------------------------------------------
// Request

/** The request HonoRequest reads: url, method, headers and a body that is already in memory. */
export class LambdaRequest extends LightBody {
  readonly url: string;
  readonly method: string;
  override readonly headers: Headers;
  #signal: AbortSignal | undefined;

  constructor(url: string, method: string, headers: LightHeaders, body: Buffered | ReadableStream<Uint8Array> | null) {
    super(body);
    this.url = url;
    this.method = method;
    this.headers = headers as unknown as Headers;
  }

  get [Symbol.toStringTag]() {
    return "Request";
  }

  get signal(): AbortSignal {
    this.#signal ??= new AbortController().signal;
    return this.#signal;
  }

  get redirect(): "follow" {
    return "follow";
  }

  get cache(): "default" {
    return "default";
  }

  get credentials(): "same-origin" {
    return "same-origin";
  }

  get integrity(): string {
    return "";
  }

  get keepalive(): boolean {
    return false;
  }

  get mode(): "cors" {
    return "cors";
  }

  get referrer(): string {
    return "about:client";
  }

  get referrerPolicy(): "" {
    return "";
  }

  get destination(): "" {
    return "";
  }

  get duplex(): "half" {
    return "half";
  }

  clone(): LambdaRequest {
    return new LambdaRequest(this.url, this.method, new LightHeaders(this.headers), this.cloneBody());
  }
}

/**
 * A header value as Node's HTTP server reads it off the wire, which is what the local runtime's
 * app sees: a value with a character beyond Latin-1 becomes its UTF-8 bytes, one character each.
 * (Hono's adapter percent-encodes instead, which turns a non-ASCII Idempotency-Key into a valid one
 * deployed that the local runtime refuses.)
 */
const byteString = (value: string) => (/[\u0100-\uffff]/.test(value) ? Buffer.from(value, "utf8").toString("latin1") : value);

/**
 * What may never stand literally in an encoded path: `?` and `#` (they would end it), `%` unless
 * it starts an escape, whitespace, controls and anything outside ASCII.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are among what must be escaped
const unsafeInPath = /[?#\s\0-\x1f\x7f"<>\\^`{|}]|%(?![0-9A-Fa-f]{2})|[^\0-\x7f]+/g;

/**
 * A request path that is safe to put into a URL. API Gateway HTTP APIs hand the function the path
 * already percent-decoded (`/files/a%23b` arrives as `/files/a#b`), while REST APIs and function
 * URLs hand it still encoded. Escaping only what an encoded path cannot contain keeps an encoded
 * path byte for byte and turns a decoded one back into the path the client sent (`%XY` already in
 * a decoded path is indistinguishable from an escape and is left as one).
 */
export function encodePath(path: string): string {
  // Byte-wise from UTF-8: a lone surrogate becomes U+FFFD instead of throwing, as encodeURIComponent would.
  const escaped = path.replace(unsafeInPath, (match) =>
    Array.from(Buffer.from(match, "utf8"), (byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`).join(""),
  );
  return escaped.startsWith("/") ? escaped : `/${escaped}`;
}

/** A path as API Gateway HTTP APIs hand it to a function: percent-decoded, an invalid escape left as sent. */
export function decodedPath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/**
 * The path a deployed function routes on, for the path a client sent: decoded by the gateway,
 * escaped again by this adapter. An encoded slash becomes a separator there (`/a%2Fb` routes as
 * `/a/b`) and a double escape loses a level (`%2541` as `%41`); the local runtime routes on this
 * path too, so both answer a path alike.
 */
export function gatewayPath(path: string): string {
  return encodePath(decodedPath(path));
}

/** The request an API Gateway v2 event describes. Throws TypeError on headers no HTTP client can send. */
export function requestFromEvent(event: ApiGatewayV2Event): LambdaRequest {
  const headers = new LightHeaders();
  // API Gateway sends `cookies: []` for a request without cookies: that is no Cookie header at all.
  if (Array.isArray(event.cookies) && event.cookies.length > 0) headers.set("cookie", event.cookies.join("; "));
  if (event.headers) {
    for (const name of Object.keys(event.headers)) {
      const value = event.headers[name];
      if (value) headers.set(name, byteString(value));
    }
  }
  let body: Buffered | null = null;
  if (event.body) {
    body = event.isBase64Encoded ? Buffer.from(event.body, "base64") : event.body;
    headers.set("content-length", String(typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.byteLength));
  }
  const host = event.requestContext.domainName ?? event.headers?.host;
  const query = event.rawQueryString ? `?${event.rawQueryString}` : "";
  return new LambdaRequest(`https://${host}${encodePath(event.rawPath)}${query}`, event.requestContext.http.method, headers, body);
}

// ---------------------------------------------------------------------------------------------
// Results and the handler

/** Text, JSON and XML are returned as text; everything else (images, PDFs, zip) base64-encoded. */
export function isContentTypeBinary(contentType: string): boolean {
  const type = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (type === "application/vnd.apple.installer+xml" || type === "application/vnd.mozilla.xul+xml") return true;
  if (/^text\/(plain|html|css|javascript|csv)/.test(type)) return false;
  return !/[/+](json|xml)$/.test(type);
}

/** The API Gateway v2 result for a response (a light one or one of Node's). */
export async function resultOf(response: Response, options: HandleOptions = {}): Promise<ApiGatewayV2Result> {
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  response.headers.forEach((value, name) => {
    if (name === "set-cookie") cookies.push(value);
    else headers[name] = value;
  });
  const contentType = headers["content-type"];
  const encoding = headers["content-encoding"];
  const base64 = (contentType ? (options.isContentTypeBinary ?? isContentTypeBinary)(contentType) : false) || (!!encoding && !/^identity$/i.test(encoding));
  let body: string;
  if (LightResponse.isLight(response)) body = await response.resultBody(base64);
  else body = base64 ? Buffer.from(await response.arrayBuffer()).toString("base64") : await response.text();
  const result: ApiGatewayV2Result = { statusCode: response.status, headers, body, isBase64Encoded: base64 };
  if (cookies.length > 0) result.cookies = cookies;
  return result;
}

function isV2Event(event: unknown): event is ApiGatewayV2Event {
  const e = event as Partial<ApiGatewayV2Event> | null;
  return typeof e?.rawPath === "string" && typeof e.requestContext?.http?.method === "string";
}

/**
 * Replaces the global `Headers` and `Response` with the light classes. For a Lambda entry point
 * only: plain assignment, so Node's own classes are never loaded for it.
 */
export function installFetchGlobals(): void {
  const globals = globalThis as Record<string, unknown>;
  globals.Headers = LightHeaders;
  globals.Response = LightResponse;
}

/**
 * The Lambda handler for an app behind an API Gateway HTTP API. It works with or without
 * `installFetchGlobals()`; with it, a request never loads Node's fetch implementation.
 */
export function handle(app: FetchApp, options: HandleOptions = {}) {
  let fallback: Promise<(event: unknown, context: unknown) => Promise<unknown>> | undefined;
  return async (event: ApiGatewayV2Event, lambdaContext?: unknown): Promise<ApiGatewayV2Result> => {
    if (!isV2Event(event)) {
      fallback ??= import("hono/aws-lambda").then((m) => m.handle(app as never, options as never) as (event: unknown, context: unknown) => Promise<unknown>);
      // Payload 1.0 from an HTTP API carries the path decoded too; Hono's adapter pastes it into the URL as is.
      const path = (event as { path?: unknown } | null)?.path;
      const safe = typeof path === "string" ? { ...(event as object), path: encodePath(path) } : event;
      return (await fallback)(safe, lambdaContext) as Promise<ApiGatewayV2Result>;
    }
    let request: LambdaRequest;
    try {
      request = requestFromEvent(event);
    } catch (error) {
      const invalid = error instanceof TypeError;
      log(invalid ? "warn" : "error", "unreadable API Gateway event", { error: (error as Error).message });
      return resultOf(
        new LightResponse(invalid ? "Invalid request" : "Internal Server Error", { status: invalid ? 400 : 500 }) as unknown as Response,
        options,
      );
    }
    const response = await app.fetch(request as unknown as Request, { event, requestContext: event.requestContext, lambdaContext });
    return resultOf(response, options);
  };
}
