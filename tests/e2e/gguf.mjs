// Rewrites one string value of a GGUF file's metadata (tests make hostile files from real ones).
// The tensor data is kept byte for byte; only the header changes length, and the data section is
// re-aligned after it, so the result is a well-formed GGUF that differs in that one value.

const SIZES = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export function withString(file, key, value) {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let at = 4 + 4;
  const u64 = () => { const v = Number(view.getBigUint64(at, true)); at += 8; return v; };
  const u32 = () => { const v = view.getUint32(at, true); at += 4; return v; };
  const string = () => { const n = u64(); const s = file.subarray(at, at + n).toString("utf8"); at += n; return s; };
  const skipValue = (type) => {
    if (type === 8) return void string();
    if (type === 9) {
      const inner = u32(), n = u64();
      for (let i = 0; i < n; i++) skipValue(inner);
      return;
    }
    at += SIZES[type];
  };
  const nTensors = u64(), nKv = u64();
  let span = null, alignment = 32;
  for (let i = 0; i < nKv; i++) {
    const name = string();
    const type = u32();
    const start = at;
    if (name === "general.alignment") alignment = view.getUint32(at, true);
    skipValue(type);
    if (name === key) {
      if (type !== 8) throw new Error(`${key} is not a string`);
      span = [start, at];
    }
  }
  if (!span) throw new Error(`${key} is not in the file`);
  for (let i = 0; i < nTensors; i++) {
    string();
    const dims = u32();
    at += 8 * dims + 4 + 8;
  }
  const dataStart = Math.ceil(at / alignment) * alignment;
  const encoded = Buffer.from(value, "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUint64LE(BigInt(encoded.length));
  const header = Buffer.concat([file.subarray(0, span[0]), length, encoded, file.subarray(span[1], at)]);
  const padding = Buffer.alloc((alignment - (header.length % alignment)) % alignment);
  return Buffer.concat([header, padding, file.subarray(dataStart)]);
}
