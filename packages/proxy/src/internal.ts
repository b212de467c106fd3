// For the @picop command packages only (the gateway): the shared settings table and secrets.
// Not public API: it may change in any release.

export { equalSecret } from './admin.js';
export type { Setting, SettingValues } from './settings.js';
export {
  loadSettings,
  markdownTable,
  readSecret,
  resolvesToLoopback,
  startCommand,
  usage,
} from './settings.js';
