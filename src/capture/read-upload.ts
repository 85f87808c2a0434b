import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createGunzip, type Gunzip, constants as zlibConstants } from 'node:zlib';
import { isReplayError, ReplayError } from '../errors/index.ts';
import { nativeInflateGzipInto } from '../native/gzip-inflate.ts';
import {
  type BodyLimits,
  base64Payload,
  declaredEncoding,
  expectNotDeclaredGzip,
  inflatedCap,
  isForm,
  isGzip,
} from './body-encoding.ts';
import type { BufferPool, PooledBuffer } from './buffer-pool.ts';
import type { BudgetLease } from './inflight-budget.ts';
import { lastTokenCandidate, TokenCandidates, TokenScanner, type TokenScanOptions } from './token-scan.ts';

export interface UploadOptions {
  readonly maxBodyBytes: number;
  readonly bodyLimits: BodyLimits;
  readonly lease: BudgetLease;
  /**
   * Called with the body's token as soon as it is found, before anything parses the body (and, for a large body,
   * before the rest of it is read or inflated); throws to refuse the request. Called again only if it refused a
   * candidate that the exact scan then shows was a decoy. Absent when the request is authenticated already (a
   * query-string token): the body is then not searched.
   */
  readonly authenticate?: ((token: string) => Promise<void>) | undefined;
  /** Where the exact scan looks for the token besides the `/s/` places (token-scan.ts). */
  readonly tokenScan?: TokenScanOptions | undefined;
  /**
   * Where a body inflated in one piece gets its output buffer. Given only when the caller calls `Upload.release` once
   * nothing refers to `json` any more; absent, every body gets a buffer of its own.
   */
  readonly outputBuffers?: BufferPool | undefined;
  /**
   * Whether a gzip body inflated in one piece tries libdeflate first (src/native/gzip-inflate.ts, when built), before
   * node:zlib. Default true; false only to test the node:zlib path alone.
   */
  readonly nativeInflate?: boolean | undefined;
}

export interface Upload {
  /** The decoded JSON bytes. */
  readonly json: Buffer;
  /** Bytes as sent. */
  readonly wireBytes: number;
  /**
   * SHA-256 of the bytes as sent, hex: the same for a client's retry of a request (posthog-js resends the very body),
   * which lets the blob consumer drop the second copy when the first was committed but never answered.
   */
  readonly wireDigest: string;
  /** The first token found in the body (and authenticated), or undefined: none, or not looked for. */
  readonly token: string | undefined;
  /**
   * Gives `json`'s buffer back to `UploadOptions.outputBuffers` when it came from there (a no-op otherwise): call it
   * once, when nothing refers to `json` or a view of it any more. Not calling it is always safe.
   */
  readonly release: () => void;
}

const noRelease = () => {};

/** Output chunk of the streaming gunzip: few thread-pool round trips per body, and a fine grain to stop at. */
const INFLATE_CHUNK_BYTES = 256 * 1024;
/**
 * A gzip body declared this small is read whole and inflated in one piece, into one buffer of the size its trailer
 * announces (one thread-pool job, no joining copy: what posthog-js sends almost always), and its token is looked for
 * in the result before anything parses it. Inflating such a body costs a few milliseconds at most; stopping part-way
 * pays off only for large ones.
 */
const ONE_PIECE_MAX_WIRE_BYTES = 1024 * 1024;
/** The exact token scan over bytes already held runs this much at a time, letting the event loop go in between. */
const EXACT_SCAN_SLICE_BYTES = 1024 * 1024;
/** Wire bytes read ahead of the decoder before the socket is paused. */
const READ_AHEAD_BYTES = 1024 * 1024;

function declaredLength(req: IncomingMessage): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined || header.trim() === '') return undefined;
  const value = Number(header);
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/**
 * Pulls a request body chunk by chunk, and can stop at any point without destroying the socket (the error answer
 * still goes out; the server then closes the connection instead of reading the rest).
 */
class WireReader {
  total = 0;
  /** Hashes the wire bytes (gzip for posthog-js, an eighth of the JSON: under 1 % of capture's CPU). */
  readonly digest = createHash('sha256');
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly req: IncomingMessage;
  private readonly maxBytes: number;
  /** Takes undeclared bytes from the budget as they arrive. */
  private readonly onBytes: ((bytes: number) => void) | undefined;

  constructor(req: IncomingMessage, maxBytes: number, onBytes: ((bytes: number) => void) | undefined) {
    this.req = req;
    this.maxBytes = maxBytes;
    this.onBytes = onBytes;
    req.on('data', this.onData);
    req.on('end', this.onEnd);
    req.on('error', this.onError);
    req.on('close', this.onClose);
    if (req.readableEnded) this.ended = true;
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.req.pause();
    this.signal();
  }

  private readonly onData = (chunk: Buffer) => {
    if (this.failure) return;
    this.total += chunk.length;
    if (this.total > this.maxBytes) {
      this.fail(new ReplayError('body_too_large', `body exceeds ${this.maxBytes} bytes`));
      return;
    }
    try {
      this.onBytes?.(chunk.length);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    this.digest.update(chunk);
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.queued >= READ_AHEAD_BYTES) this.req.pause();
    this.signal();
  };

  private readonly onEnd = () => {
    this.ended = true;
    this.signal();
  };

  private readonly onError = (error: Error) => {
    this.fail(new ReplayError('request_timeout', `the request body did not arrive: ${error.message}`));
  };

  private readonly onClose = () => {
    if (!this.ended && !this.req.complete) {
      this.fail(
        new ReplayError('request_timeout', 'the connection closed before the body arrived (timed out or gone)'),
      );
    }
  };

  /** The next chunk, or undefined at the end of the body. */
  async next(): Promise<Buffer | undefined> {
    for (;;) {
      if (this.failure) throw this.failure;
      const chunk = this.queue.shift();
      if (chunk !== undefined) {
        this.queued -= chunk.length;
        if (this.queued < READ_AHEAD_BYTES && this.req.isPaused() && !this.ended) this.req.resume();
        return chunk;
      }
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** The whole body: `head` (the chunks taken already) and the rest. */
  async readAll(head: readonly Buffer[]): Promise<Buffer> {
    const parts = [...head];
    for (let chunk = await this.next(); chunk !== undefined; chunk = await this.next()) parts.push(chunk);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Stops reading; an unread rest stays unread. */
  close(): void {
    this.req.off('data', this.onData);
    this.req.off('end', this.onEnd);
    this.req.off('error', this.onError);
    this.req.off('close', this.onClose);
    if (!this.ended) this.req.pause();
    this.queue.length = 0;
  }
}

/** Collects the decoded bytes, against the caps and the budget. */
class DecodedSink {
  readonly chunks: Buffer[] = [];
  total = 0;
  private readonly limits: BodyLimits;
  private readonly lease: BudgetLease | undefined;
  /** Bytes taken from the budget ahead (an output buffer allocated before it is filled). */
  private prepaid: number;

  constructor(limits: BodyLimits, lease: BudgetLease | undefined, prepaid = 0) {
    this.limits = limits;
    this.lease = lease;
    this.prepaid = prepaid;
  }

  /** Takes one decoded chunk; throws when a cap or the budget is passed. `compressedBytes` drives the ratio guard. */
  accept(chunk: Buffer, compressedBytes: number | undefined): void {
    this.total += chunk.length;
    const max = this.limits.maxDecompressedBytes;
    if (compressedBytes !== undefined) {
      const cap = inflatedCap(this.limits, compressedBytes);
      if (this.total > cap && cap < max) {
        throw new ReplayError(
          'decompression_ratio_exceeded',
          `body expands more than ${this.limits.maxCompressionRatio}x (${compressedBytes} compressed bytes)`,
        );
      }
    }
    if (this.total > max) {
      throw new ReplayError('decompressed_too_large', `decompressed body exceeds ${max} bytes`);
    }
    const covered = Math.min(this.prepaid, chunk.length);
    this.prepaid -= covered;
    this.lease?.take(chunk.length - covered);
    this.chunks.push(chunk);
  }

  bytes(): Buffer {
    if (this.total === 0) throw new ReplayError('empty_body', 'the request body is empty after decoding');
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.total);
  }
}

/**
 * Finds the body's token among the decoded chunks as they come (see token-scan.ts) and has it authenticated: first
 * the fast candidate; if that is refused as unknown, the exact scan decides whether it was the real token (the
 * refusal stands) or a decoy inside an event (the real one is authenticated instead). No candidate at all: the exact
 * scan of the whole body decides.
 */
class TokenGate {
  admitted: string | undefined;
  private readonly chunks: readonly Buffer[];
  private readonly authenticate: (token: string) => Promise<void>;
  /** Streaming: the fast search runs as chunks come. Whole body: it runs once, from the end, in `finish`. */
  private fast: TokenCandidates | undefined;
  private fromEnd: boolean;
  private fastAt = 0;
  private exact: TokenScanner | undefined;
  private exactAt = 0;
  /** How far into `chunks[exactAt]` the exact scan is. */
  private exactOffset = 0;
  private refused: { readonly token: string; readonly error: unknown } | undefined;
  private pending: string | undefined;
  private readonly scanOptions: TokenScanOptions;

  constructor(
    chunks: readonly Buffer[],
    authenticate: (token: string) => Promise<void>,
    mode: 'streaming' | 'whole-body' = 'streaming',
    scanOptions: TokenScanOptions = {},
  ) {
    this.chunks = chunks;
    this.authenticate = authenticate;
    this.scanOptions = scanOptions;
    this.fromEnd = mode === 'whole-body';
    if (!this.fromEnd) this.fast = new TokenCandidates();
  }

  /** Looks at the chunks not seen yet (synchronous); true when a token waits for `settle`. */
  look(): boolean {
    if (this.pending !== undefined) return true;
    if (this.admitted !== undefined) return false;
    if (this.fast) {
      while (this.fastAt < this.chunks.length) {
        const candidate = this.fast.feed(this.chunks[this.fastAt++]!);
        if (candidate !== undefined) {
          this.fast = undefined;
          this.pending = candidate;
          return true;
        }
      }
      return false;
    }
    if (this.exact) {
      while (this.exactAt < this.chunks.length) {
        const token = this.exact.feed(this.chunks[this.exactAt]!.subarray(this.exactOffset));
        this.exactAt++;
        this.exactOffset = 0;
        if (token !== undefined) {
          this.exact = undefined;
          this.pending = token;
          return true;
        }
      }
    }
    return false;
  }

  /**
   * Runs the exact scan over the chunks it has not seen yet, 1 MiB at a time with the event loop let go in between
   * (in one go, the ~200 MB/s scan of a 64 MB body would hold it for a third of a second). True when it found a token,
   * which then waits for `settle`.
   */
  private async catchUp(): Promise<boolean> {
    const exact = this.exact;
    if (!exact) return false;
    while (this.exactAt < this.chunks.length) {
      const chunk = this.chunks[this.exactAt]!;
      while (this.exactOffset < chunk.length) {
        const piece = chunk.subarray(this.exactOffset, this.exactOffset + EXACT_SCAN_SLICE_BYTES);
        this.exactOffset += piece.length;
        const token = exact.feed(piece);
        if (token !== undefined) {
          this.exact = undefined;
          this.pending = token;
          return true;
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      this.exactAt++;
      this.exactOffset = 0;
    }
    return false;
  }

  /** Authenticates the waiting token; throws when the request is refused. */
  async settle(): Promise<void> {
    const token = this.pending;
    if (token === undefined) return;
    this.pending = undefined;
    if (this.refused?.token === token) throw this.refused.error; // the exact scan confirms the refused candidate
    try {
      await this.authenticate(token);
      this.admitted = token;
    } catch (error) {
      const maybeDecoy =
        this.refused === undefined &&
        (isReplayError(error, 'invalid_token') || isReplayError(error, 'recordings_disabled'));
      if (!maybeDecoy) throw error;
      this.refused = { token, error };
      this.exact = new TokenScanner(this.scanOptions);
      this.exactAt = 0;
      this.exactOffset = 0;
      if (await this.catchUp()) await this.settle();
    }
  }

  /** At the end of the body (`json`, all of it): the exact scan decides if nothing was admitted yet. */
  async finish(json: Buffer): Promise<void> {
    if (this.admitted !== undefined) return;
    if (this.fromEnd) {
      this.fromEnd = false;
      const candidate = lastTokenCandidate(json);
      if (candidate !== undefined) {
        this.pending = candidate;
        await this.settle();
        if (this.admitted !== undefined) return;
      }
    }
    if (this.fast || (this.exact === undefined && this.refused === undefined)) {
      this.fast = undefined;
      this.exact = new TokenScanner(this.scanOptions);
      this.exactAt = 0;
      this.exactOffset = 0;
    }
    if (await this.catchUp()) await this.settle();
    if (this.admitted === undefined && this.refused) {
      throw new ReplayError('missing_token', 'the request carries no token (only a refused decoy)');
    }
  }
}

function compressionError(error: unknown): ReplayError {
  if (error instanceof ReplayError) return error;
  return new ReplayError('invalid_compression', `body is not valid gzip: ${(error as Error).message}`, {
    cause: error,
  });
}

/**
 * Inflates what `next` yields into `sink`, pausing whenever `gate` has a token to authenticate, until it settles.
 * `compressedBytes` tells the ratio guard how many compressed bytes there are (declared, or read so far).
 */
async function inflate(
  first: readonly Buffer[],
  next: () => Promise<Buffer | undefined>,
  sink: DecodedSink,
  compressedBytes: () => number,
  gate: TokenGate | undefined,
  chunkSize = INFLATE_CHUNK_BYTES,
  output?: Buffer,
): Promise<void> {
  const gunzip: Gunzip = output ? gunzipInto(output) : createGunzip({ chunkSize });
  let failure: unknown;
  let ended = false;
  let waiting = false;
  let wake: (() => void) | undefined;
  const signal = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const waitForSignal = () =>
    new Promise<void>((resolve) => {
      wake = resolve;
    });
  gunzip.on('data', (out: Buffer) => {
    if (failure !== undefined) return;
    try {
      sink.accept(out, compressedBytes());
    } catch (error) {
      failure = error;
      gunzip.destroy();
      signal();
      return;
    }
    if (gate?.look()) {
      waiting = true;
      gunzip.pause(); // nothing more is inflated until the token is known good
      signal();
    }
  });
  gunzip.on('error', (error) => {
    failure ??= error;
    signal();
  });
  gunzip.on('end', () => {
    ended = true;
    signal();
  });

  /** Waits until `done()`, authenticating a token found meanwhile. */
  const until = async (done: () => boolean) => {
    for (;;) {
      if (failure !== undefined) throw compressionError(failure);
      if (waiting) {
        await gate?.settle();
        waiting = false;
        gunzip.resume();
        continue;
      }
      if (done()) return;
      await waitForSignal();
    }
  };

  try {
    const pending = [...first];
    for (;;) {
      const input = pending.shift() ?? (await next());
      if (failure !== undefined) throw compressionError(failure);
      if (input === undefined) break;
      let written = false;
      gunzip.write(input, () => {
        written = true;
        signal();
      });
      await until(() => written);
    }
    gunzip.end();
    await until(() => ended);
  } finally {
    if (!ended) gunzip.destroy();
  }
}

/** Fields of node:zlib's stream that hold its output buffer (not public API; see `gunzipInto`). */
interface ZlibOutput {
  _outBuffer?: unknown;
  _outOffset?: unknown;
  _chunkSize?: unknown;
}

/**
 * A gunzip stream that writes its output into `output` first (then, should the body inflate to more, into buffers of
 * `output`'s size of its own, as with `chunkSize`). Node's zlib streams take no output buffer, only a size they
 * allocate one of: the stream is made with the smallest, which is then swapped for `output` before anything is
 * written (`_outBuffer` and `_chunkSize` are what node:zlib reads for every write). Should a Node version lay its
 * streams out otherwise, the swap is skipped and the stream allocates its output itself, as before: slower, never
 * wrong (test/unit/capture/buffer-pool.test.ts notices).
 */
function gunzipInto(output: Buffer): Gunzip {
  const gunzip = createGunzip({ chunkSize: zlibConstants.Z_MIN_CHUNK });
  const fields = gunzip as unknown as ZlibOutput;
  if (Buffer.isBuffer(fields._outBuffer) && fields._outOffset === 0 && typeof fields._chunkSize === 'number') {
    fields._outBuffer = output;
    fields._chunkSize = output.length;
    return gunzip;
  }
  gunzip.destroy();
  return createGunzip({ chunkSize: output.length });
}

/**
 * Reads an upload (`/s/`, and the behaviours and posthog-js events routes alike) off the socket and decodes it to its
 * JSON bytes, so that a request with a bad token costs as
 * little as possible and a flood of large bodies costs bounded memory (docs/capture.md, "Order of the checks"):
 *
 * - headers first: an unsupported `Content-Encoding` or `compression`, or a declared Content-Length over the limit,
 *   is refused before a byte of the body is read; a declared length is taken from the in-flight budget up front
 *   (503 `capture_overloaded` when it does not fit), an undeclared one as it streams;
 * - a gzip body declared up to 1 MiB (posthog-js, nearly always) is read whole and inflated in one piece, into one
 *   buffer of the size its trailer announces (taken from the budget first; lent by `outputBuffers` when given); its
 *   token is looked for from the end of the result (posthog-js writes one into every item, after the events);
 * - a larger gzip body is inflated as it arrives, 256 KiB of output at a time, and the output is searched for the
 *   first token as it comes; when one turns up, inflation pauses (the socket is then no longer read either) until
 *   `authenticate` settles, so a bad token costs the bytes up to it;
 * - every decoded chunk is counted against the caps (64 MB, the ratio guard) and the budget the moment it exists;
 * - a plain JSON body is the wire bytes themselves, searched the same way; the base64 `data=` form (`sendBeacon`) is
 *   read whole and decoded, and its payload, if gzip, inflated in one piece like a small gzip body.
 *
 * How the token is found (a fast search, and the exact scan when the candidate is refused or missing) is
 * `TokenGate`'s, below. Every path gives the same bytes and error codes for the same body (body-encoding.ts says what
 * is accepted), except that the ratio guard of a body of undeclared length counts the bytes received so far.
 */
export async function readUpload(req: IncomingMessage, url: URL, options: UploadOptions): Promise<Upload> {
  const { bodyLimits: limits, lease, authenticate, tokenScan, outputBuffers } = options;
  const inflateGzipInto = options.nativeInflate === false ? undefined : nativeInflateGzipInto;
  const encoding = declaredEncoding(req.headers['content-encoding'], url.searchParams.get('compression'));
  const declared = declaredLength(req);
  if (declared !== undefined && declared > options.maxBodyBytes) {
    throw new ReplayError('body_too_large', `body of ${declared} bytes exceeds ${options.maxBodyBytes} bytes`);
  }
  if (declared !== undefined) lease.take(declared); // before a byte is read

  const reader = new WireReader(
    req,
    options.maxBodyBytes,
    declared === undefined ? (bytes) => lease.take(bytes) : undefined,
  );
  const finish = async (sink: DecodedSink, gate: TokenGate | undefined, release = noRelease): Promise<Upload> => {
    const json = sink.bytes();
    await gate?.finish(json);
    return { json, wireBytes: reader.total, wireDigest: reader.digest.digest('hex'), token: gate?.admitted, release };
  };
  /** A gzip body held whole, inflated in one piece. */
  const inflateWhole = async (gz: Buffer): Promise<Upload> => {
    // The output buffer: the size the gzip trailer (ISIZE) announces, +1 so zlib meets the end of the stream in the
    // same call, within the caps; taken from the budget before zlib allocates it. A trailer that lies (or, with
    // several gzip members, tells only the last one's size) costs more rounds, each counted as it comes, never a
    // wrong result.
    const announced = gz.length >= 18 ? gz.readUInt32LE(gz.length - 4) : 0;
    const chunkSize = Math.max(zlibConstants.Z_DEFAULT_CHUNK, Math.min(announced, inflatedCap(limits, gz.length)) + 1);
    lease.take(chunkSize);
    const sink = new DecodedSink(limits, lease, chunkSize);
    const gate = authenticate && new TokenGate(sink.chunks, authenticate, 'whole-body', tokenScan);
    const output: PooledBuffer | undefined = outputBuffers?.take(chunkSize);
    const target = output?.bytes ?? Buffer.allocUnsafeSlow(chunkSize);
    // libdeflate first, in one call; anything it does not take whole (damage, a lying trailer, several members)
    // goes through node:zlib, whose answers and error codes are the reference.
    const written = inflateGzipInto?.(gz, target) ?? -1;
    if (written >= 0) {
      if (written > 0) sink.accept(target.subarray(0, written), gz.length);
      if (gate?.look()) await gate.settle();
    } else {
      await inflate(
        [gz],
        async () => undefined,
        sink,
        () => gz.length,
        gate,
        chunkSize,
        target,
      );
    }
    // Releasable only from here on: the stream has ended, so no thread-pool write into the buffer is pending (after a
    // failure one may be, and the buffer is left to the collector).
    return await finish(sink, gate, output ? () => output.give() : noRelease);
  };
  /** A plain JSON body: its chunks are the JSON (in the budget already), looked at as they come. */
  const readPlain = async (
    first: readonly Buffer[],
    next: () => Promise<Buffer | undefined>,
    mode: 'streaming' | 'whole-body',
  ): Promise<Upload> => {
    const sink = new DecodedSink(limits, undefined);
    const gate = authenticate && new TokenGate(sink.chunks, authenticate, mode, tokenScan);
    const pending = [...first];
    for (;;) {
      const chunk = pending.shift() ?? (await next());
      if (chunk === undefined) break;
      sink.accept(chunk, undefined);
      if (gate?.look()) await gate.settle();
    }
    return await finish(sink, gate);
  };
  try {
    // The first bytes decide the encoding.
    const head: Buffer[] = [];
    let headBytes = 0;
    while (headBytes < 5) {
      const chunk = await reader.next();
      if (chunk === undefined) break;
      head.push(chunk);
      headBytes += chunk.length;
    }
    if (headBytes === 0) throw new ReplayError('empty_body', 'the request body is empty');
    const start = head.length === 1 ? head[0]! : Buffer.concat(head);
    const form = isForm(req.headers['content-type'], start);

    if (form || encoding.base64) {
      const bytes = base64Payload(await reader.readAll(head), form);
      lease.take(bytes.length);
      if (isGzip(bytes)) return await inflateWhole(bytes);
      expectNotDeclaredGzip(encoding);
      return await readPlain([bytes], async () => undefined, 'whole-body');
    }
    const small = declared !== undefined && declared <= ONE_PIECE_MAX_WIRE_BYTES;
    if (isGzip(start) && small) return await inflateWhole(await reader.readAll(head));
    if (isGzip(start)) {
      const sink = new DecodedSink(limits, lease);
      const gate = authenticate && new TokenGate(sink.chunks, authenticate, 'streaming', tokenScan);
      await inflate(
        head,
        () => reader.next(),
        sink,
        () => declared ?? reader.total,
        gate,
      );
      return await finish(sink, gate);
    }
    expectNotDeclaredGzip(encoding);
    return await readPlain(head, () => reader.next(), small ? 'whole-body' : 'streaming');
  } finally {
    reader.close();
  }
}
