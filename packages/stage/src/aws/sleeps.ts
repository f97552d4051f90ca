/**
 * Waits a stop can interrupt (delivery retries, backoff): each resolves true when its time is up,
 * false when cancelled, and every wait asked for after `cancelAll` resolves false at once.
 */
export class Sleeps {
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private cancelled = false;

  sleep(ms: number): Promise<boolean> {
    if (this.cancelled) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve(true);
      }, ms);
      this.timers.set(timer, () => resolve(false));
    });
  }

  cancelAll(): void {
    this.cancelled = true;
    for (const [timer, cancel] of this.timers) {
      clearTimeout(timer);
      cancel();
    }
    this.timers.clear();
  }
}
