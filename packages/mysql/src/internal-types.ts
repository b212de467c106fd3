// The parts of mysql2's callback Pool internals this package reads (mysql2 3.x, lib/base/pool.js).
export interface CorePoolInternals {
  _allConnections: { length: number };
  _freeConnections: { length: number };
  _connectionQueue: { length: number };
}
