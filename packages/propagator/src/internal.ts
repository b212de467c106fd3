// For the @picop packages only (net-wrap and the wrappers). Not public API: it may change in any
// release.

export { coverLibrary, guarded, inRouted, markActiveSpanRouted } from './guard.js';
export { defaultConnectionPropagator } from './picop-carrier.js';
