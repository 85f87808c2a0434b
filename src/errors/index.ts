export {
  classOfCode,
  type ErrorClass,
  type ErrorCode,
  errorCatalogue,
  errorReferenceMarkdown,
} from './catalogue.ts';
export { asReplayError, isReplayError, ReplayError } from './replay-error.ts';
