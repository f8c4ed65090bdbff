// A one-line progress bar on a terminal (stderr); plain periodic lines when not a terminal.

export class ProgressBar {
  private lastPlain = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(
    private readonly label: string,
    private readonly quiet = false,
  ) {}

  update(done: number, total: number, detail: string): void {
    if (this.quiet) return;
    const width = 24;
    const filled = Math.round((done / Math.max(total, 1)) * width);
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${detail}`;
    if (this.tty) {
      process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 120) - 1)}\x1b[K`);
    } else if (done === total || Date.now() - this.lastPlain > 10_000) {
      this.lastPlain = Date.now();
      process.stderr.write(`${line}\n`);
    }
  }

  done(): void {
    if (!this.quiet && this.tty) process.stderr.write('\n');
  }
}
