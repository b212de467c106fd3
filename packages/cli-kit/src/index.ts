// What the two commands (picop-proxy, picop-gateway) share; bundled into each at build time.
export type { Setting, SettingValues } from './settings.js';
export {
  equalSecret,
  loadSettings,
  markdownTable,
  readSecret,
  resolvesToLoopback,
  startCommand,
  usage,
} from './settings.js';
