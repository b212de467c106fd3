// For the @picop command packages only (the gateway): the shared settings table.
// Not public API: it may change in any release.
export type { Setting, SettingValues } from './settings.js';
export { loadSettings, markdownTable, usage } from './settings.js';
