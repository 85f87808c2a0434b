import { type ErrorCode, errorCatalogue } from './catalogue.ts';

/**
 * The one error type the project throws on purpose. Callers branch on `code`, never on `message`; `retriable` says
 * whether the same call may succeed later; `httpStatus` is what the HTTP edge answers.
 */
export class ReplayError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly httpStatus: number;
  readonly type: string;

  constructor(code: ErrorCode, detail: string, options?: { cause?: unknown }) {
    super(detail, options);
    const entry = errorCatalogue[code];
    this.name = 'ReplayError';
    this.code = code;
    this.retriable = entry.retriable;
    this.httpStatus = entry.httpStatus;
    this.type = entry.type;
  }

  /** The JSON body the HTTP edge sends: `{type, code, detail}`. */
  toJSON(): { type: string; code: string; detail: string } {
    return { type: this.type, code: this.code, detail: this.message };
  }
}

export function isReplayError(error: unknown, code?: ErrorCode): error is ReplayError {
  return error instanceof ReplayError && (code === undefined || error.code === code);
}
