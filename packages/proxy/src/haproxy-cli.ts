#!/usr/bin/env node
// `picop-haproxy`: picop-proxy's settings (the same flags, variables and config file) written out
// as an HAProxy configuration that runs the PiCoP header action (haproxy/picop.lua) and relays at
// HAProxy's speed. `picop-haproxy --listen 0.0.0.0:6379 ... > haproxy.cfg; haproxy -f haproxy.cfg`.
// PICOP_HAPROXY_LUA_FILE: where HAProxy finds the action, when not at this package's own copy (an
// HAProxy container given the file by an init container).
import { join } from 'node:path';
import { startCommand, usage } from '@picop/cli-kit';
import { loadConfig, SETTINGS } from './config.js';
import { haproxyConfig, LUA_FILE } from './haproxy.js';

const USAGE = usage(
  'picop-haproxy',
  "Prints the HAProxy configuration that routes TCP connections by their PiCoP header, from picop-proxy's settings.",
  SETTINGS,
  '  picop-haproxy --listen 0.0.0.0:6379 --default redis:6379 \\\n    --routes-file /etc/picop/routes.json --admin 127.0.0.1:9001 > haproxy.cfg',
);

try {
  const config = startCommand(
    'picop-haproxy',
    () => loadConfig(process.argv.slice(2)),
    USAGE,
    join(__dirname, '..'),
  );
  if (config !== undefined) {
    process.stdout.write(haproxyConfig(config, process.env.PICOP_HAPROXY_LUA_FILE || LUA_FILE));
  }
} catch (err) {
  process.stderr.write(`picop-haproxy: ${(err as Error).message}\n`);
  process.exit(2);
}
