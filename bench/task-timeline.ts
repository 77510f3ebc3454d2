/**
 * Where a parcel's poll task spends its time, from its history alone: for each workflow task
 * that ran local activities, the server's timestamps (scheduled, started, completed) and
 * each local activity's marker (scheduled and completed, the worker's clock): the gaps
 * between them are the task's activations in the worker.
 *
 *   node --import tsx bench/task-timeline.ts <temporal address> [parcels=200] [first=0] [minutes]
 *
 * `minutes`: only the tasks started in the last that many minutes (e.g. a hold's, not the ramp's).
 * The server's timestamps and the worker's clock are compared: run it where both share a clock
 * (one machine), as bench:scale does.
 *
 * Run against a bench:scale stack while it holds (its log names the server's address).
 */
import { Connection, Client } from '@temporalio/client';
import { shipmentWorkflowId } from '../src/workflows/contract';
import { percentile } from './support/measure';
import { parcelShipmentId } from './support/parcels';

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
  t ? Number(t.seconds) * 1000 + (t.nanos ?? 0) / 1e6 : NaN;

async function main() {
  const [address, parcels = '200', first = '0', minutes] = process.argv.slice(2);
  const since = minutes === undefined ? -Infinity : Date.now() - Number(minutes) * 60_000;
  const connection = await Connection.connect({ address: address! });
  try {
    await report(new Client({ connection }), Number(parcels), Number(first), since);
  } finally {
    await connection.close();
  }
}

async function report(client: Client, parcels: number, first: number, since: number) {
  const rows: number[][] = [];
  for (let i = first; i < first + parcels; i++) {
    const history = await client.workflow.getHandle(shipmentWorkflowId(parcelShipmentId(i))).fetchHistory();
    const events = history.events ?? [];
    for (let e = 0; e < events.length; e++) {
      const completed = events[e]!;
      if (!completed.workflowTaskCompletedEventAttributes) continue;
      const started = events[e - 1]!;
      let s = e - 2;
      while (s > 0 && !events[s]!.workflowTaskScheduledEventAttributes) s--;
      const scheduled = events[s]!;
      const markers: { scheduled: number; completed: number; type: string }[] = [];
      // The task's commands, up to the next task (markers, search attributes, the timer).
      for (let m = e + 1; m < events.length && !events[m]!.workflowTaskScheduledEventAttributes; m++) {
        const data = events[m]!.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
        if (!data) continue;
        const marker = JSON.parse(Buffer.from(data).toString()) as {
          activity_type?: string;
          complete_time?: { seconds: number; nanos: number };
          original_schedule_time?: { seconds: number; nanos: number };
        };
        markers.push({
          type: marker.activity_type ?? '?',
          scheduled: ms(marker.original_schedule_time),
          completed: ms(marker.complete_time),
        });
      }
      const poll = markers.find((m) => m.type === 'pollCourier');
      const write = markers.find((m) => m.type === 'recordTracking');
      if (!poll || !write) continue;
      // A marker's complete_time is workflow time: the time the task's workflow had when the
      // activity was scheduled (the task's start, then each answer's), plus the activity's run.
      // Its original_schedule_time is the worker's clock when the workflow scheduled it.
      const startedAt = ms(started.eventTime);
      if (startedAt < since) continue;
      const pollRun = poll.completed - startedAt;
      const writeRun = write.completed - poll.completed;
      rows.push([
        startedAt - ms(scheduled.eventTime),
        poll.scheduled - startedAt,
        pollRun,
        write.scheduled - (poll.scheduled + pollRun),
        writeRun,
        ms(completed.eventTime) - (write.scheduled + writeRun),
      ]);
    }
  }
  const names = [
    'scheduled→started',
    'started→poll scheduled',
    'poll (run)',
    'poll done→write scheduled',
    'write (run)',
    'write done→completed',
  ];
  console.log(`${rows.length} poll tasks of ${parcels} parcels (ms)`);
  if (rows.length === 0) return;
  for (let c = 0; c < names.length; c++) {
    const v = rows.map((r) => r[c]!);
    const at = (p: number) => percentile(v, p).toFixed(0);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    console.log(
      `${names[c]!.padEnd(26)} mean ${mean.toFixed(0).padStart(6)}  p50 ${at(50).padStart(6)}  p90 ${at(90).padStart(6)}  p99 ${at(99).padStart(6)}`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
