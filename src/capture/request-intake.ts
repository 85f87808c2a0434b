import type { IncomingMessage } from 'node:http';
import { ReplayError } from '../errors/index.ts';
import type { Team } from '../teams/team-store.ts';
import type { BodyLimits } from './body-encoding.ts';
import { BufferPool } from './buffer-pool.ts';
import type { InflightBudget } from './inflight-budget.ts';
import { readUpload, type Upload } from './read-upload.ts';
import type { TeamAdmission, TeamRequirement } from './team-admission.ts';
import type { TokenScanOptions } from './token-scan.ts';

/** How one route's requests are taken in. */
export interface IntakeRoute {
  /** What the team must allow besides a good token (recordings: session recording enabled). */
  readonly requirement?: TeamRequirement | undefined;
  /** Also take the token from `Authorization: Bearer <token>` (the behaviours API), before the query string. */
  readonly bearerToken?: boolean | undefined;
  /** Where the exact token scan looks in the body (token-scan.ts). */
  readonly tokenScan?: TokenScanOptions | undefined;
  /** Sees the upload as soon as it is read (byte metrics), before anything else is checked. */
  readonly onUpload?: ((upload: Upload) => void) | undefined;
  /**
   * Nothing the route keeps once its handler has settled (records, the answer, errors, metrics) refers to the bytes
   * of `body.json`: whatever it needs of them it copies (the recordings route builds its messages into buffers of
   * their own). The decoded body's buffer then serves a later request instead of becoming garbage (buffer-pool.ts).
   */
  readonly reusesBodyBuffer?: boolean | undefined;
}

/** A request body that passed the intake, for the route to parse. */
export interface ReceivedBody {
  /** The decoded JSON bytes. */
  readonly json: Buffer;
  /** SHA-256 of the body as sent (`Upload.wireDigest`): equal for a client's retry of the same request. */
  readonly wireDigest: string;
  /**
   * The team of the request: that of the token the route's parser read from the body, or, when the body has none, of
   * the token sent before it (header, query string). A token other than the one admitted already is admitted now
   * (its rate taken), before the route produces anything.
   */
  teamOf(bodyToken: string | undefined): Promise<Team>;
}

export interface RequestIntakeOptions {
  readonly producerReady: () => boolean;
  readonly admission: TeamAdmission;
  readonly budget: InflightBudget;
  readonly maxBodyBytes: number;
  readonly bodyLimits: BodyLimits;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * Inflated bodies up to the small-lease size (what posthog-js sends) share output buffers; 16 MiB idle at most is a
 * buffer for each of a few dozen such requests in flight.
 */
const POOLED_BUFFER_MAX_BYTES = 4 * 1024 * 1024;
const POOL_IDLE_MAX_BYTES = 16 * 1024 * 1024;

/**
 * The ordered intake every upload route of capture shares (`/s/`, `/api/v1/behaviors`, posthog-js `/e/`): the order
 * of the checks is the point (DESIGN §3.5.1, docs/capture.md "Order of the checks"), so that everything that can
 * refuse a request cheaply runs before its body is inflated and parsed:
 *
 * 1. Kafka ready (else 503 `kafka_unavailable`), nothing read;
 * 2. a token sent before the body (`Authorization: Bearer` where the route takes it, `?token=`, `?api_key=`) is
 *    authenticated and rate-limited before a byte of the body is read;
 * 3. the body is read and decoded within the in-flight budget (read-upload.ts), and a token in it is found and
 *    admitted as it arrives, before anything parses it; no token anywhere is 401 `missing_token`, unparsed;
 * 4. the route parses the body and produces; its bytes stay counted in the budget until it has answered.
 */
export class RequestIntake {
  private readonly options: RequestIntakeOptions;
  private readonly outputBuffers = new BufferPool({
    maxBufferBytes: POOLED_BUFFER_MAX_BYTES,
    maxIdleBytes: POOL_IDLE_MAX_BYTES,
  });

  constructor(options: RequestIntakeOptions) {
    this.options = options;
  }

  async receive<T>(
    req: IncomingMessage,
    url: URL,
    route: IntakeRoute,
    handle: (body: ReceivedBody) => Promise<T>,
  ): Promise<T> {
    const { admission } = this.options;
    if (!this.options.producerReady()) throw new ReplayError('kafka_unavailable', 'Kafka is unavailable; retry later');
    const header = route.bearerToken ? BEARER.exec(req.headers.authorization ?? '')?.[1] : undefined;
    const earlyToken = header || url.searchParams.get('token') || url.searchParams.get('api_key') || undefined;
    let admitted: { token: string; team: Team } | undefined;
    if (earlyToken !== undefined) {
      admitted = { token: earlyToken, team: await admission.admit(earlyToken, route.requirement) };
    }

    const lease = this.options.budget.lease();
    let upload: Upload | undefined;
    try {
      upload = await readUpload(req, url, {
        maxBodyBytes: this.options.maxBodyBytes,
        bodyLimits: this.options.bodyLimits,
        lease,
        tokenScan: route.tokenScan,
        outputBuffers: route.reusesBodyBuffer ? this.outputBuffers : undefined,
        authenticate: admitted
          ? undefined
          : async (token) => {
              admitted = { token, team: await admission.admit(token, route.requirement) };
            },
      });
      route.onUpload?.(upload);
      const first = admitted;
      if (!first) throw new ReplayError('missing_token', 'the request carries no token');
      return await handle({
        json: upload.json,
        wireDigest: upload.wireDigest,
        teamOf: async (bodyToken) => {
          const token = bodyToken ?? earlyToken;
          if (token === undefined) throw new ReplayError('missing_token', 'the request carries no token');
          return token === first.token ? first.team : await admission.admit(token, route.requirement);
        },
      });
    } finally {
      upload?.release(); // the handler has settled: nothing of the route refers to the body any more
      lease.release();
    }
  }
}
