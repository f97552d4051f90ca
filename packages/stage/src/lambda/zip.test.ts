import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, deflateRawSync } from "node:zlib";
import { afterAll, describe, expect, test } from "vitest";
import { deployFunction } from "./deploy";
import { unpackZip } from "./zip";

interface ZipInput {
  name: string;
  data?: string | Buffer;
  deflate?: boolean;
  /** Unix mode, file type included. */
  mode?: number;
  /** Sizes and CRC after the data, as archiver writes streamed entries. */
  descriptor?: boolean;
}

/** A minimal zip writer: what archiver produces for SST's code.zip, without zip64. */
function zip(entries: ZipInput[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, "utf8");
    const data = Buffer.from(entry.data ?? "");
    const body = entry.deflate ? deflateRawSync(data) : data;
    const crc = crc32(data) >>> 0;
    const flags = 0x800 | (entry.descriptor ? 0x8 : 0);
    const method = entry.deflate ? 8 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(entry.descriptor ? 0 : crc, 14);
    local.writeUInt32LE(entry.descriptor ? 0 : body.length, 18);
    local.writeUInt32LE(entry.descriptor ? 0 : data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const parts = [local, name, body];
    if (entry.descriptor) {
      const descriptor = Buffer.alloc(16);
      descriptor.writeUInt32LE(0x08074b50, 0);
      descriptor.writeUInt32LE(crc, 4);
      descriptor.writeUInt32LE(body.length, 8);
      descriptor.writeUInt32LE(data.length, 12);
      parts.push(descriptor);
    }
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((entry.mode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    const record = Buffer.concat(parts);
    locals.push(record);
    offset += record.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

const work = mkdtempSync(join(tmpdir(), "enclave-zip-"));
let count = 0;
function archive(bytes: Buffer): string {
  const file = join(work, `code-${++count}.zip`);
  writeFileSync(file, bytes);
  return file;
}
const target = () => join(work, `out-${++count}`);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const handlerSource = `import { readFileSync } from "node:fs";\nexport const handler = async () => readFileSync(new URL("./static/readme.txt", import.meta.url), "utf8").repeat(2);\n`;

describe("unpackZip", () => {
  test("extracts stored and deflated entries, directories, modes and links as packed", async () => {
    const dir = target();
    await unpackZip(
      archive(
        zip([
          // SST's archive lists the package root itself.
          { name: "./", mode: 0o40755 },
          { name: "api.mjs", data: handlerSource, deflate: true, descriptor: true },
          { name: "static/", mode: 0o40755 },
          { name: "static/readme.txt", data: "hello " },
          { name: "bin/tool", data: "#!/bin/sh\necho ok\n", mode: 0o100755, deflate: true },
          { name: "empty.txt", data: "", deflate: true },
          { name: "current", data: "api.mjs", mode: 0o120777 },
        ]),
      ),
      dir,
    );
    expect(readdirSync(dir).sort()).toEqual(["api.mjs", "bin", "current", "empty.txt", "static"]);
    expect(readFileSync(join(dir, "api.mjs"), "utf8")).toBe(handlerSource);
    expect(readFileSync(join(dir, "static/readme.txt"), "utf8")).toBe("hello ");
    expect(readFileSync(join(dir, "empty.txt"), "utf8")).toBe("");
    expect(statSync(join(dir, "bin/tool")).mode & 0o111).toBe(0o111);
    expect(lstatSync(join(dir, "current")).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, "current"))).toBe("api.mjs");

    // The unpacked package is a function's code directory.
    const fn = deployFunction(
      { name: "zipped", codeDir: dir, handler: "api.handler", environment: {}, timeoutSeconds: 5, memoryMb: 128 },
      { region: "us-east-1", neonProxyPort: 9 },
    );
    try {
      expect(await fn.invoke({})).toMatchObject({ ok: true, result: "hello hello " });
    } finally {
      await fn.close();
    }
  });

  test("a large deflated entry survives the round trip", async () => {
    const big = Buffer.from(Array.from({ length: 200_000 }, (_, i) => `line ${i}\n`).join(""));
    const dir = target();
    await unpackZip(archive(zip([{ name: "chunk-ABC.mjs", data: big, deflate: true, descriptor: true }])), dir);
    expect(readFileSync(join(dir, "chunk-ABC.mjs")).equals(big)).toBe(true);
  });

  test("refuses zip64, corrupt data, and entries or links that leave the directory", async () => {
    const good = zip([{ name: "a.txt", data: "abc" }]);

    const zip64 = Buffer.from(good);
    zip64.writeUInt16LE(0xffff, zip64.length - 12);
    await expect(unpackZip(archive(zip64), target())).rejects.toThrow(/zip64 archives are not supported/);

    const bigEntry = Buffer.from(good);
    bigEntry.writeUInt32LE(0xffffffff, bigEntry.indexOf(Buffer.from([0x50, 0x4b, 1, 2])) + 24);
    await expect(unpackZip(archive(bigEntry), target())).rejects.toThrow(/a\.txt: zip64 entries are not supported/);

    const corrupt = Buffer.from(good);
    corrupt[30 + "a.txt".length] = "x".charCodeAt(0);
    await expect(unpackZip(archive(corrupt), target())).rejects.toThrow(/a\.txt: CRC mismatch/);

    await expect(unpackZip(archive(Buffer.from("not a zip at all, just text")), target())).rejects.toThrow(/not a zip archive/);

    const outside = target();
    await expect(unpackZip(archive(zip([{ name: "../escape.txt", data: "x" }])), outside)).rejects.toThrow(/unsafe entry name/);
    await expect(unpackZip(archive(zip([{ name: "/etc/escape", data: "x" }])), target())).rejects.toThrow(/unsafe entry name/);
    await expect(unpackZip(archive(zip([{ name: "up", data: "../../etc", mode: 0o120777 }])), target())).rejects.toThrow(/link leaves the archive/);
    expect(readdirSync(work)).not.toContain("escape.txt");
  });
});
