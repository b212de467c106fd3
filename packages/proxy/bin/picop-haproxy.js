#!/usr/bin/env node
// Committed so that npm links the command at install time, before the build exists.
require('../dist/haproxy-cli.js');
