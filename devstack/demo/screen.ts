/** The demo's terminal: a live frame redrawn in place on a TTY, plain lines elsewhere. */

// ---------------------------------------------------------------------------------------
// The terminal

export class Screen {
  readonly tty: boolean;
  private height = 0;

  constructor(private readonly stream: NodeJS.WriteStream) {
    this.tty = stream.isTTY === true;
  }

  get color(): boolean {
    return this.tty;
  }

  line(text = ''): void {
    this.stream.write(`${text}\n`);
  }

  /** Redraws the live frame in place (terminal only). */
  draw(lines: string[]): void {
    if (!this.tty) return;
    const up = this.height > 0 ? `\x1b[${this.height}F` : '\x1b[?25l';
    this.stream.write(`${up}${lines.map((l) => `${l}\x1b[K`).join('\n')}\n\x1b[J`);
    this.height = lines.length;
  }

  /** Leaves the last frame on screen; what follows prints below it. */
  release(): void {
    if (this.tty && this.height > 0) this.stream.write('\x1b[?25h');
    this.height = 0;
  }

  get width(): number {
    return this.stream.columns || 120;
  }

  get rows(): number {
    return this.stream.rows || 50;
  }
}

// ---------------------------------------------------------------------------------------
// The run
