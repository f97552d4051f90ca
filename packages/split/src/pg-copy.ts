import type { Client, Connection, Submittable } from "pg";

/**
 * COPY over node-postgres. pg runs any object with `submit(connection)` as a query and hands it
 * the protocol messages that follow (CopyInResponse, CopyData, CommandComplete, ReadyForQuery,
 * ErrorResponse); that is all COPY needs, in both directions, with no extra package.
 */

type CopyConnection = Connection & { sendCopyFromChunk(chunk: Buffer): void; endCopyFrom(): void; sendCopyFail(message: string): void };

class CopyStatement implements Submittable {
  private readonly chunks: Buffer[] = [];
  private rowCount = 0;
  private settled = false;
  readonly done: Promise<{ data: Buffer; rows: number }>;
  private resolve!: (value: { data: Buffer; rows: number }) => void;
  private reject!: (error: unknown) => void;

  constructor(
    private readonly text: string,
    private readonly input?: Buffer,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: Connection) {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: CopyConnection) {
    if (!this.input) {
      connection.sendCopyFail("no data to copy in");
      return;
    }
    // The protocol allows any chunking; 64 KB messages keep memory flat on the server side.
    for (let offset = 0; offset < this.input.length; offset += 65_536) connection.sendCopyFromChunk(this.input.subarray(offset, offset + 65_536));
    connection.endCopyFrom();
  }

  handleCopyData(message: { chunk: Buffer }) {
    // The parser hands out a view of its read buffer, which the next socket read reuses.
    this.chunks.push(Buffer.from(message.chunk));
  }

  handleCommandComplete(message: { text: string }) {
    const match = /^COPY (\d+)/.exec(message.text);
    if (match) this.rowCount = Number(match[1]);
  }

  handleReadyForQuery() {
    if (this.settled) return;
    this.settled = true;
    this.resolve({ data: Buffer.concat(this.chunks), rows: this.rowCount });
  }

  // pg queues the next statement until the server is ready again, so failing at once is safe.
  handleError(error: unknown) {
    if (this.settled) return;
    this.settled = true;
    this.reject(error);
  }

  handleRowDescription() {}
  handleDataRow() {}
  handleEmptyQuery() {}
  handlePortalSuspended() {}
}

/**
 * `COPY (…) TO STDOUT` with each row handed to `onRow` as it arrives (the server sends one row per
 * CopyData message). The buffer is a view of the socket's read buffer: copy what is kept.
 */
class CopyOutStream extends CopyStatement {
  constructor(
    text: string,
    private readonly onRow: (row: Buffer) => void,
  ) {
    super(text);
  }

  override handleCopyData(message: { chunk: Buffer }) {
    this.onRow(message.chunk);
  }
}

/** Streams `COPY (…) TO STDOUT` row by row; answers the number of rows. */
export async function copyOutRows(client: Client, statement: string, onRow: (row: Buffer) => void): Promise<number> {
  return (await client.query(new CopyOutStream(statement, onRow)).done).rows;
}

type Readable = { pause(): void; resume(): void };
const socketOf = (client: Client) => (client as unknown as { connection: { stream: Readable } }).connection.stream;

/**
 * Stops reading from the server (its rows wait in the socket and, beyond that, on the server):
 * the back-pressure of a COPY OUT whose consumer is slower. Messages already received are still
 * delivered. Every pause needs its `resumeReading`, or the connection never ends.
 */
export const pauseReading = (client: Client) => socketOf(client).pause();
export const resumeReading = (client: Client) => socketOf(client).resume();

/** `COPY (…) TO STDOUT`: the rows in COPY text format, and how many. */
export async function copyOut(client: Client, statement: string): Promise<{ data: Buffer; rows: number }> {
  return client.query(new CopyStatement(statement)).done;
}

/** `COPY … FROM STDIN` with `data` in COPY text format; answers the number of rows loaded. */
export async function copyIn(client: Client, statement: string, data: Buffer): Promise<number> {
  return (await client.query(new CopyStatement(statement, data)).done).rows;
}

/** A value in COPY text format: NULL as `\N`, and the characters the format reserves escaped. */
export function copyValue(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return "\\N";
  if (typeof value !== "string") return String(value);
  return value.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"));
}

/** A string as an SQL literal (standard_conforming_strings is on in every session we open). */
export function literal(value: string): string {
  if (value.includes("\u0000")) throw new Error("a NUL character cannot be part of an SQL literal");
  return `'${value.replace(/'/g, "''")}'`;
}

/** A quoted SQL identifier. */
export const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
