export type { PicopDispatcherOptions, PicopDispatcherPicopOptions } from './PicopDispatcher.js';
export { createDispatcher, PicopDispatcher } from './PicopDispatcher.js';
