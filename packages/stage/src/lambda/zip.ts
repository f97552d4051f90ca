import { mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { promisify } from "node:util";
import { crc32, inflateRaw } from "node:zlib";

const inflate = promisify(inflateRaw);

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const ZIP64_END_LOCATOR = 0x07064b50;
const CENTRAL_HEADER = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;
const STORED = 0;
const DEFLATED = 8;
const UNIX = 3;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;

interface Entry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  /** Unix mode, when the archive was made on a Unix system. */
  mode: number | undefined;
}

class ZipError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "ZipError";
  }
}

/** The entries listed in the central directory, which is authoritative: archiver streams entries with data descriptors. */
function centralDirectory(zip: Buffer, file: string): Entry[] {
  let end = -1;
  for (let at = zip.length - 22; at >= Math.max(0, zip.length - 22 - 0xffff); at--) {
    if (zip.readUInt32LE(at) === END_OF_CENTRAL_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new ZipError(file, "not a zip archive (no end of central directory record)");
  if (end >= 20 && zip.readUInt32LE(end - 20) === ZIP64_END_LOCATOR) throw new ZipError(file, "zip64 archives are not supported");
  if (zip.readUInt16LE(end + 4) !== 0 || zip.readUInt16LE(end + 6) !== 0) throw new ZipError(file, "multi-disk archives are not supported");
  const count = zip.readUInt16LE(end + 10);
  const size = zip.readUInt32LE(end + 12);
  const offset = zip.readUInt32LE(end + 16);
  if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) throw new ZipError(file, "zip64 archives are not supported");
  if (offset + size > end) throw new ZipError(file, "central directory out of bounds");

  const entries: Entry[] = [];
  let at = offset;
  for (let i = 0; i < count; i++) {
    if (at + 46 > end || zip.readUInt32LE(at) !== CENTRAL_HEADER) throw new ZipError(file, `bad central directory entry ${i}`);
    const madeBy = zip.readUInt16LE(at + 4);
    const flags = zip.readUInt16LE(at + 8);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const entry: Entry = {
      name: zip.toString("utf8", at + 46, at + 46 + nameLength),
      method: zip.readUInt16LE(at + 10),
      crc: zip.readUInt32LE(at + 16),
      compressedSize: zip.readUInt32LE(at + 20),
      size: zip.readUInt32LE(at + 24),
      localOffset: zip.readUInt32LE(at + 42),
      mode: madeBy >> 8 === UNIX ? zip.readUInt32LE(at + 38) >>> 16 : undefined,
    };
    if (entry.compressedSize === 0xffffffff || entry.size === 0xffffffff || entry.localOffset === 0xffffffff) {
      throw new ZipError(file, `${entry.name}: zip64 entries are not supported`);
    }
    if (flags & 0x1) throw new ZipError(file, `${entry.name}: encrypted entries are not supported`);
    if (entry.method !== STORED && entry.method !== DEFLATED) throw new ZipError(file, `${entry.name}: compression method ${entry.method} is not supported`);
    entries.push(entry);
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

async function entryData(zip: Buffer, entry: Entry, file: string): Promise<Buffer> {
  const at = entry.localOffset;
  if (at + 30 > zip.length || zip.readUInt32LE(at) !== LOCAL_HEADER) throw new ZipError(file, `${entry.name}: bad local header`);
  const start = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
  if (start + entry.compressedSize > zip.length) throw new ZipError(file, `${entry.name}: data out of bounds`);
  const raw = zip.subarray(start, start + entry.compressedSize);
  const data = entry.method === STORED ? Buffer.from(raw) : await inflate(raw);
  if (data.length !== entry.size) throw new ZipError(file, `${entry.name}: size ${data.length}, expected ${entry.size}`);
  if (crc32(data) >>> 0 !== entry.crc) throw new ZipError(file, `${entry.name}: CRC mismatch`);
  return data;
}

/** Where an entry goes under `root`; names that would land outside it are refused. */
function targetPath(root: string, name: string, file: string): string {
  const path = name.endsWith("/") ? name.slice(0, -1) : name;
  if (path === "" || isAbsolute(path) || path.includes("\\") || path.split("/").includes(".."))
    throw new ZipError(file, `unsafe entry name ${JSON.stringify(name)}`);
  const target = resolve(root, path);
  if (!target.startsWith(root + sep)) throw new ZipError(file, `unsafe entry name ${JSON.stringify(name)}`);
  return target;
}

/**
 * Extracts a zip archive (stored or deflated entries, as the `archiver` package writes SST's
 * `code.zip`) into `dir`, keeping Unix permissions and symbolic links that stay inside `dir`.
 * Zip64, encrypted and multi-disk archives are refused with an error naming the file.
 */
export async function unpackZip(zipFile: string, dir: string): Promise<void> {
  const zip = await readFile(zipFile);
  const entries = centralDirectory(zip, zipFile);
  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  for (const entry of entries) {
    // SST's archive names the package root itself as "./": nothing to extract.
    if (entry.name === "./") continue;
    const target = targetPath(root, entry.name, zipFile);
    const type = entry.mode === undefined ? 0 : entry.mode & S_IFMT;
    if (entry.name.endsWith("/") || type === S_IFDIR) {
      await mkdir(target, { recursive: true });
      continue;
    }
    const data = await entryData(zip, entry, zipFile);
    await mkdir(dirname(target), { recursive: true });
    if (type === S_IFLNK) {
      const link = data.toString("utf8");
      const resolved = resolve(dirname(target), link);
      if (isAbsolute(link) || relative(root, resolved).split(sep).includes(".."))
        throw new ZipError(zipFile, `${entry.name}: link leaves the archive (${link})`);
      await rm(target, { force: true });
      await symlink(link, target);
      continue;
    }
    const permissions = entry.mode === undefined ? 0 : entry.mode & 0o777;
    await writeFile(target, data, { mode: permissions || 0o644 });
  }
}
