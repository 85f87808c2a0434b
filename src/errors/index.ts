export { type ErrorCode, errorCatalogue, errorReferenceMarkdown } from './catalogue.ts';
export { isReplayError, ReplayError } from './replay-error.ts';
