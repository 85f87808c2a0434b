import { classOfCode, type ErrorClass, type ErrorCode, errorCatalogue } from './catalogue.ts';

/**
 * The one error type the project throws on purpose. Callers branch on `code`, never on `message`; `retriable` says
 * whether the same call may succeed later; `httpStatus` is what the HTTP edge answers; `errorClass` is what a consumer
 * does with it (retry, quarantine, exit).
 */
export class ReplayError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly httpStatus: number;
  readonly type: string;
  readonly errorClass: ErrorClass;

  constructor(code: ErrorCode, detail: string, options?: { cause?: unknown }) {
    super(detail, options);
    const entry = errorCatalogue[code];
    this.name = 'ReplayError';
    this.code = code;
    this.retriable = entry.retriable;
    this.httpStatus = entry.httpStatus;
    this.type = entry.type;
    this.errorClass = classOfCode(code);
  }

  /** The JSON body the HTTP edge sends: `{type, code, detail}`. */
  toJSON(): { type: string; code: string; detail: string } {
    return { type: this.type, code: this.code, detail: this.message };
  }
}

export function isReplayError(error: unknown, code?: ErrorCode): error is ReplayError {
  return error instanceof ReplayError && (code === undefined || error.code === code);
}

/**
 * Any thrown value as a catalogue error. A ReplayError is itself; a full disk (ENOSPC from any write) is `disk_full`,
 * which is backpressure; anything else is an unexpected failure, `internal_error` (transient: retried, never skipped,
 * never quarantined on the first try).
 */
export function asReplayError(error: unknown): ReplayError {
  if (error instanceof ReplayError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC') {
    return new ReplayError('disk_full', `no space left on the spool disk: ${detail}`, { cause: error });
  }
  return new ReplayError('internal_error', detail, { cause: error });
}
