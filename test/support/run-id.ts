/**
 * A name part unique to this test file's run: test files run at once in several vitest projects
 * (peer ranges, `guarded`) against the same servers, and may start in the same millisecond.
 */
export function runId(): string {
  return `${Date.now().toString(36)}${process.pid.toString(36)}`;
}
