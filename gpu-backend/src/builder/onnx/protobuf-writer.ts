// A minimal protobuf wire-format writer. The ONNX model file is written field by field with it, so the
// builder needs no generated code and can stream multi-gigabyte models as a list of chunks.

export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private buf = new Uint8Array(256);
  private pos = 0;
  private flushed = 0;

  get length(): number {
    return this.flushed + this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.flushBuf();
    if (n > this.buf.length) this.buf = new Uint8Array(Math.max(n, 4096));
  }

  private flushBuf(): void {
    if (this.pos === 0) return;
    this.chunks.push(this.buf.slice(0, this.pos));
    this.flushed += this.pos;
    this.pos = 0;
    if (this.buf.length < 65536) this.buf = new Uint8Array(this.buf.length * 2);
  }

  varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  private tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  int(field: number, value: number | bigint): void {
    this.tag(field, 0);
    this.varint(value);
  }

  float(field: number, value: number): void {
    this.tag(field, 5);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat32(this.pos, value, true);
    this.pos += 4;
  }

  string(field: number, value: string): void {
    this.bytes(field, new TextEncoder().encode(value));
  }

  /** Length-delimited bytes; large payloads are kept by reference, not copied. */
  bytes(field: number, value: Uint8Array): void {
    this.tag(field, 2);
    this.varint(value.byteLength);
    if (value.byteLength > 4096) {
      this.flushBuf();
      this.chunks.push(value);
      this.flushed += value.byteLength;
    } else {
      this.ensure(value.byteLength);
      this.buf.set(value, this.pos);
      this.pos += value.byteLength;
    }
  }

  message(field: number, write: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    write(inner);
    this.tag(field, 2);
    this.varint(inner.length);
    this.flushBuf();
    for (const c of inner.finish()) {
      this.chunks.push(c);
      this.flushed += c.byteLength;
    }
  }

  packedInts(field: number, values: readonly (number | bigint)[]): void {
    // A packed field is framed exactly like a nested message: tag, length, then the varints.
    this.message(field, (w) => {
      for (const v of values) w.varint(v);
    });
  }

  packedFloats(field: number, values: readonly number[]): void {
    const data = new Float32Array(values);
    this.bytes(field, new Uint8Array(data.buffer));
  }

  /** The encoded message as chunks (write them in order, or concatenate). */
  finish(): Uint8Array[] {
    this.flushBuf();
    return this.chunks;
  }

  toBytes(): Uint8Array {
    const chunks = this.finish();
    const out = new Uint8Array(this.flushed);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.byteLength;
    }
    return out;
  }
}
