// Bounded big-endian byte writing and reading shared by the wire codecs. Every read checks its
// bounds and reports a failure through the codec's own error type, naming the field, so each codec
// keeps its precise errors (dns-packet style) without repeating the mechanics.

/** Builds the codec's error for a field: e.g. `(field, reason) => new SessionFrameError(field, reason)`. */
export type FieldError = (field: string, reason: string) => Error

const utf8Encoder = new TextEncoder()
// ignoreBOM keeps a leading U+FEFF as data, so decoding and re-encoding give back the same bytes.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export function utf8Length (value: string): number { return utf8Encoder.encode(value).byteLength }

export class ByteWriter {
  readonly bytes: Uint8Array
  private readonly view: DataView
  private offset = 0
  constructor (length: number) {
    this.bytes = new Uint8Array(length)
    this.view = new DataView(this.bytes.buffer)
  }

  u8 (value: number): void { this.view.setUint8(this.offset, value); this.offset += 1 }
  u16 (value: number): void { this.view.setUint16(this.offset, value); this.offset += 2 }
  u32 (value: number): void { this.view.setUint32(this.offset, value); this.offset += 4 }
  f64 (value: number): void { this.view.setFloat64(this.offset, value); this.offset += 8 }
  raw (value: Uint8Array): void { this.bytes.set(value, this.offset); this.offset += value.byteLength }
  /** u8 length, then the bytes. */
  bytes8 (value: Uint8Array): void { this.u8(value.byteLength); this.raw(value) }
  /** u8 length, then UTF-8. */
  string8 (value: string): void { this.bytes8(utf8Encoder.encode(value)) }
  /** u16 length, then UTF-8. */
  string16 (value: string): void {
    const encoded = utf8Encoder.encode(value)
    this.u16(encoded.byteLength)
    this.raw(encoded)
  }
}

export class ByteReader {
  private readonly view: DataView
  private offset = 0
  constructor (private readonly bytes: Uint8Array, private readonly fail: FieldError) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  private need (count: number, field: string): void {
    if (this.offset + count > this.bytes.byteLength) throw this.fail(field, 'truncated')
  }

  u8 (field: string): number { this.need(1, field); return this.view.getUint8(this.offset++) }
  u16 (field: string): number { this.need(2, field); const v = this.view.getUint16(this.offset); this.offset += 2; return v }
  u32 (field: string): number { this.need(4, field); const v = this.view.getUint32(this.offset); this.offset += 4; return v }
  f64 (field: string): number {
    this.need(8, field)
    const value = this.view.getFloat64(this.offset)
    this.offset += 8
    if (!Number.isFinite(value)) throw this.fail(field, 'not a finite number')
    return value
  }

  /** A copy of the next `length` bytes. */
  raw (length: number, field: string): Uint8Array {
    this.need(length, field)
    const slice = this.bytes.slice(this.offset, this.offset + length)
    this.offset += length
    return slice
  }

  bytes8 (field: string): Uint8Array { return this.raw(this.u8(field), field) }

  string8 (field: string): string { return this.utf8(this.bytes8(field), field) }

  string16 (field: string, maxBytes: number): string {
    this.need(2, field)
    const length = this.view.getUint16(this.offset)
    if (length > maxBytes) throw this.fail(field, `longer than ${maxBytes} bytes`)
    this.offset += 2
    return this.utf8(this.raw(length, field), field)
  }

  /** Fails unless every byte was read; `field` names the whole message in the error. */
  end (field: string): void {
    if (this.offset !== this.bytes.byteLength) throw this.fail(field, `${this.bytes.byteLength - this.offset} trailing bytes`)
  }

  private utf8 (bytes: Uint8Array, field: string): string {
    try { return utf8Decoder.decode(bytes) } catch { throw this.fail(field, 'not valid UTF-8') }
  }
}
