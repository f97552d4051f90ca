import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The client side of PostgreSQL's password authentication, for a proxy that answers the server
 * with a password the client sent up front. Passwords are used as given (no SASLprep), as
 * node-postgres does: ASCII passwords are unaffected.
 */

/** A frontend message: type byte, then a length that counts itself. */
export function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cString = (text: string) => Buffer.from(`${text}\0`, "utf8");

/** PasswordMessage with the password in clear (AuthenticationCleartextPassword). */
export function cleartextPasswordMessage(password: string): Buffer {
  return message("p", cString(password));
}

/** PasswordMessage for AuthenticationMD5Password: `md5` + md5(md5(password + user) + salt). */
export function md5PasswordMessage(user: string, password: string, salt: Buffer): Buffer {
  const inner = createHash("md5")
    .update(password + user, "utf8")
    .digest("hex");
  const outer = createHash("md5")
    .update(Buffer.concat([Buffer.from(inner, "latin1"), salt]))
    .digest("hex");
  return message("p", cString(`md5${outer}`));
}

const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text, "utf8").digest();
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest();

/** One SCRAM-SHA-256 exchange (RFC 5802, RFC 7677) without channel binding, as PostgreSQL runs it over plain TCP. */
export class ScramSha256 {
  static readonly mechanism = "SCRAM-SHA-256";
  private readonly clientNonce = randomBytes(18).toString("base64");
  private readonly clientFirstBare = `n=*,r=${this.clientNonce}`;
  private expectedServerSignature: Buffer | undefined;

  constructor(private readonly password: string) {}

  /** SASLInitialResponse: the mechanism, then client-first-message. */
  initialResponse(): Buffer {
    const first = Buffer.from(`n,,${this.clientFirstBare}`, "utf8");
    const length = Buffer.alloc(4);
    length.writeInt32BE(first.length);
    return message("p", Buffer.concat([cString(ScramSha256.mechanism), length, first]));
  }

  /** SASLResponse with client-final-message, for the server-first-message of AuthenticationSASLContinue. */
  continue(serverFirst: string): Buffer {
    const attributes = new Map(serverFirst.split(",").map((pair) => [pair.slice(0, 1), pair.slice(2)] as const));
    const nonce = attributes.get("r") ?? "";
    const salt = Buffer.from(attributes.get("s") ?? "", "base64");
    const iterations = Number(attributes.get("i"));
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length)
      throw new Error("SCRAM: server nonce does not extend the client nonce");
    if (salt.length === 0 || !Number.isInteger(iterations) || iterations < 1) throw new Error("SCRAM: bad server-first-message");

    const saltedPassword = pbkdf2Sync(Buffer.from(this.password, "utf8"), salt, iterations, 32, "sha256");
    const clientKey = hmac(saltedPassword, "Client Key");
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = hmac(sha256(clientKey), authMessage);
    const proof = Buffer.from(clientKey.map((byte, i) => byte ^ (clientSignature[i] ?? 0)));
    this.expectedServerSignature = hmac(hmac(saltedPassword, "Server Key"), authMessage);
    return message("p", Buffer.from(`${withoutProof},p=${proof.toString("base64")}`, "utf8"));
  }

  /** Checks the server-final-message of AuthenticationSASLFinal: the server proves it knows the password too. */
  verifyFinal(serverFinal: string): void {
    const signature = /(?:^|,)v=([^,]*)/.exec(serverFinal)?.[1];
    const given = Buffer.from(signature ?? "", "base64");
    const expected = this.expectedServerSignature;
    if (!expected || given.length !== expected.length || !timingSafeEqual(given, expected)) throw new Error("SCRAM: server signature does not match");
  }
}
