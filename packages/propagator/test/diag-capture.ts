import { type DiagLogger, DiagLogLevel, diag } from '@opentelemetry/api';

/** Collects what OpenTelemetry's diag logger is told, so tests can assert on warnings. */
export function captureDiag(): { warnings: string[]; errors: string[]; restore: () => void } {
  const warnings: string[] = [];
  const errors: string[] = [];
  const logger: DiagLogger = {
    verbose: () => {},
    debug: () => {},
    info: () => {},
    warn: (message) => {
      warnings.push(message);
    },
    error: (message) => {
      errors.push(message);
    },
  };
  diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  return { warnings, errors, restore: () => diag.disable() };
}
