export type { Address } from './address.js';
export { formatAddress, parseAddress } from './address.js';
export { OriginRoutes, originOf } from './OriginRoutes.js';
export type { Route, RouteInit, RoutesOptions } from './Routes.js';
export { Routes } from './Routes.js';
export { RoutesFile } from './RoutesFile.js';
export { RouteTable } from './RouteTable.js';
export { routesValue } from './routes-value.js';
