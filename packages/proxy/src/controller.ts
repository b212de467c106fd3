/** What {@link registerWithController} returns. */
export interface ControllerRegistration {
  /** Resolves once the controller accepted the proxy. */
  readonly registered: Promise<void>;
  /** Stops retrying. */
  stop(): void;
}

/**
 * Registers a proxy with the authors' controller as their proxy does: `PUT
 * {controllerUrl}/proxy/{id}/activate`, retried every `intervalMs` until it answers 2xx. The
 * controller then pushes routes to the proxy's admin API (`PUT /admin/envs`).
 */
export function registerWithController(
  controllerUrl: string,
  id: string,
  {
    intervalMs = 2000,
    onRetry,
  }: { intervalMs?: number; onRetry?: (err: Error, attempt: number) => void } = {},
): ControllerRegistration {
  const url = `${controllerUrl.replace(/\/+$/, '')}/proxy/${encodeURIComponent(id)}/activate`;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const registered = new Promise<void>((resolve) => {
    const attempt = async (n: number) => {
      if (stopped) return;
      try {
        const res = await fetch(url, { method: 'PUT' });
        await res.arrayBuffer();
        if (res.ok) return resolve();
        throw new Error(`${url} answered ${res.status}`);
      } catch (err) {
        if (stopped) return;
        onRetry?.(err as Error, n);
        timer = setTimeout(() => attempt(n + 1), intervalMs);
      }
    };
    void attempt(1);
  });
  return {
    registered,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
