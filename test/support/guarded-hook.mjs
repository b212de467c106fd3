// For the `guarded` test project: OpenTelemetry's loader hook, so that its instrumentations patch
// the libraries the tests import (as an ES module service registers it).
import { register } from 'node:module';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
