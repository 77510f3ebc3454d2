/**
 * The simulator's two clocks. Real time is the wall clock (or an injected `now()` in tests);
 * courier time runs `timeScale` times faster and is what scenario steps are measured in.
 *
 * Courier time is continuous: changing the time scale at run time starts a new segment
 * instead of rescaling the past, so a parcel never jumps backwards and a scan already shown
 * keeps its timestamp (and therefore its event key) for ever.
 */

interface Segment {
  /** Real ms since the epoch where this segment starts. */
  real: number;
  /** Courier ms at that same instant. */
  courier: number;
  /** Courier ms per real ms. */
  scale: number;
}

export class SimClock {
  private segments: Segment[];

  constructor(
    readonly now: () => number,
    timeScale: number,
  ) {
    assertScale(timeScale);
    // Both clocks agree at start-up; they drift apart only when the scale is above 1.
    const start = now();
    this.segments = [{ real: start, courier: start, scale: timeScale }];
  }

  get timeScale(): number {
    return this.last().scale;
  }

  setTimeScale(timeScale: number): void {
    assertScale(timeScale);
    const real = this.now();
    const courier = this.courierAt(real);
    const last = this.last();
    if (last.real >= real) {
      // Two changes in the same millisecond: the later one wins.
      this.segments[this.segments.length - 1] = { real: last.real, courier: last.courier, scale: timeScale };
    } else {
      this.segments.push({ real, courier, scale: timeScale });
    }
  }

  courierNow(): number {
    return this.courierAt(this.now());
  }

  /** Courier time at a real instant. Instants before start-up extrapolate the first scale. */
  courierAt(realMs: number): number {
    const segment = this.find((s) => s.real <= realMs);
    return segment.courier + (realMs - segment.real) * segment.scale;
  }

  /**
   * The real instant the courier clock showed `courierMs` (whole ms, never later than the
   * exact instant). Stable once that instant is in the past: later scale changes only
   * append segments.
   */
  realAt(courierMs: number): number {
    const segment = this.find((s) => s.courier <= courierMs);
    return Math.floor(segment.real + (courierMs - segment.courier) / segment.scale);
  }

  private last(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  private find(matches: (segment: Segment) => boolean): Segment {
    for (let i = this.segments.length - 1; i > 0; i--) {
      if (matches(this.segments[i]!)) return this.segments[i]!;
    }
    return this.segments[0]!;
  }
}

function assertScale(timeScale: number): void {
  if (!Number.isFinite(timeScale) || timeScale <= 0) {
    throw new RangeError(`timeScale must be a positive number (got ${timeScale})`);
  }
}
