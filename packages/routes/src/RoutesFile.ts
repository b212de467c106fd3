import { EventEmitter } from 'node:events';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { dirname } from 'node:path';
import { PicopError } from '@picop/codec';
import type { RouteTable } from './RouteTable.js';
import { routesValue } from './routes-value.js';

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new PicopError('ERR_PICOP_INVALID_ARG', `Routes file ${file}: ${(err as Error).message}`);
  }
}

/** `{"feature-1": "host:port"}` or the Go reference's `[{"env_id", "destination"}]`. */
function parseRoutes(text: string, file: string): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PicopError('ERR_PICOP_INVALID_ARG', `Routes file ${file}: ${(err as Error).message}`);
  }
  return routesValue(value, `Routes file ${file}`);
}

/**
 * Keeps a route table equal to a routes file: reads it now (throwing on a bad file), then watches
 * its folder, so an edit, a rename over it, or Kubernetes' swap of a mounted ConfigMap's `..data`
 * symlink all reload it. Each reload replaces the routes at once. A bad file keeps the last good
 * routes and emits `'error'`; a good one emits `'reload'` with the number of routes.
 */
export class RoutesFile extends EventEmitter<{ reload: [routes: number]; error: [err: Error] }> {
  readonly file: string;
  readonly #routes: RouteTable;
  readonly #watcher: FSWatcher;
  #last: string;
  #pending: NodeJS.Timeout | undefined;

  constructor(file: string, routes: RouteTable) {
    super();
    this.file = file;
    this.#routes = routes;
    this.#last = readText(file);
    routes.replace(parseRoutes(this.#last, file));
    // The folder, not the file: a rename or a symlink swap replaces the file watched.
    this.#watcher = watch(dirname(file), { persistent: false }, () => this.#changed());
    this.#watcher.on('error', (err) => this.emit('error', err));
  }

  /** Stops watching. */
  close(): void {
    clearTimeout(this.#pending);
    this.#watcher.close();
  }

  // Several events come for one change (a write, then a rename): read once they settle.
  #changed(): void {
    clearTimeout(this.#pending);
    this.#pending = setTimeout(() => this.#reload(), 20);
  }

  #reload(): void {
    let text: string;
    try {
      text = readText(this.file);
      if (text === this.#last) return;
      this.#last = text;
      this.#routes.replace(parseRoutes(text, this.file));
    } catch (err) {
      this.emit('error', err as Error);
      return;
    }
    this.emit('reload', this.#routes.size);
  }
}
