/**
 * When couriers scan: the scenarios' timelines (scenarios.ts) are courier-time offsets from a
 * parcel's start, blind to the clock on the wall. This model puts them on the wall clock for a
 * parcel that starts at a given moment, with the one rule that matters for polling: **door
 * scans are made by people in working hours**. A pickup, an out-for-delivery, a delivery, a
 * failed attempt, a parcel put on a counter, a damage or return decision — every scan that
 * changes what the customer sees — happens between `fromMinute` and `toMinute` local time; one
 * the timeline puts at night happens the next morning instead, at a moment spread over the
 * morning's first `spreadMinutes`, and every later scan of the parcel moves with it. Hub scans
 * (departed, arrived: line-haul sorting runs through the night) and the courier's own system
 * events (EasyParcel's "Schedule In Arrangement" at booking) keep their time, night or day.
 *
 * Grounds: Pos Laju's couriers clock in at 06:00, sort and scan the day's parcels from 07:00,
 * deliver from 10:30 to about 19:00 and collect from shops after 15:00 (Malay Mail, 2019); the
 * trade's delivery hours are 09:00-18:00 on weekdays, stretched into the evening at peaks. The
 * window here, 07:00-21:30, is wider than both. Used by `npm run bench:courier`, which also
 * reports what its EasyParcel policy would miss if couriers did scan round the clock. The live
 * simulator keeps the plain timelines: at its compressed time scales an hour of the day means
 * nothing (see docs/couriers.md#when-couriers-scan).
 */
import { ShipmentStatus } from '../../src/domain/status';
import type { ScenarioStep } from './scenarios';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** Working hours in a courier's local time. */
export interface WorkingHours {
  /** Minutes after local midnight: door scans from here... */
  fromMinute: number;
  /** ...until here (same day). */
  toMinute: number;
  /** Local time minus UTC. */
  utcOffsetMinutes: number;
  /** A door scan moved out of the night lands this many minutes, at most, after `fromMinute`. */
  spreadMinutes: number;
}

/** Malaysian couriers (EasyParcel's): 07:00-21:30 Malaysia time (UTC+8). */
export const MALAYSIA_WORKING_HOURS: WorkingHours = {
  fromMinute: 7 * 60,
  toMinute: 21 * 60 + 30,
  utcOffsetMinutes: 8 * 60,
  spreadMinutes: 3 * 60,
};

/** Whether a person at a door or a counter makes this scan (hub sorting and system events do not). */
export function isDoorScan(step: ScenarioStep): boolean {
  switch (step.status) {
    case ShipmentStatus.OUT_FOR_DELIVERY:
    case ShipmentStatus.DELIVERED:
    case ShipmentStatus.ATTEMPT_FAIL:
    case ShipmentStatus.AVAILABLE_FOR_PICKUP:
    case ShipmentStatus.EXCEPTION:
    case ShipmentStatus.RETURNING:
      return true;
    case ShipmentStatus.IN_TRANSIT:
      return step.subStatus === 'PICKED_UP';
    default:
      return false;
  }
}

/** The first moment at or after `atMs` inside working hours, or `atMs` itself when it is inside. */
export function nextOpening(atMs: number, hours: WorkingHours): number {
  const offset = hours.utcOffsetMinutes * MINUTE;
  const local = atMs + offset;
  const midnight = Math.floor(local / DAY) * DAY;
  const minute = (local - midnight) / MINUTE;
  if (minute >= hours.fromMinute && minute < hours.toMinute) return atMs;
  const day = minute < hours.fromMinute ? midnight : midnight + DAY;
  return day + hours.fromMinute * MINUTE - offset;
}

/**
 * `steps` (offsets from the parcel's start) for a parcel starting at `startMs` (ms since the
 * epoch): the same steps, in the same order, with door scans moved out of the night and every
 * later scan moved with them. `random` gives each moved scan its place in the morning ([0, 1)).
 */
export function inWorkingHours(
  steps: readonly ScenarioStep[],
  startMs: number,
  hours: WorkingHours,
  random: () => number,
): ScenarioStep[] {
  let shift = 0;
  return steps.map((step) => {
    const at = startMs + step.after + shift;
    if (isDoorScan(step)) {
      const opening = nextOpening(at, hours);
      if (opening !== at) {
        const moved = opening + Math.floor(random() * hours.spreadMinutes) * MINUTE;
        shift += moved - at;
      }
    }
    return { ...step, after: step.after + shift };
  });
}
