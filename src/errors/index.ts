export { type ErrorCode, errorCatalogue } from './catalogue.ts';
export { isReplayError, ReplayError } from './replay-error.ts';
