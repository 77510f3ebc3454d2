import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createOrderActivities } from '../../src/activities/orders';
import { CourierCode } from '../../src/couriers/types';
import { createWebhookTransport } from '../../src/notifications/transport';
import { insertOrder } from '../../src/read-model/orders';
import { freshDatabase, type TestDatabase } from '../support/db';
import { testLog } from '../support/env';
import { uniqueId } from '../support/temporal';

const SECRET = 'a-shared-secret-of-32-characters';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe('customer notifications', () => {
  let database: TestDatabase;
  let server: http.Server;
  let url: string;
  const received: Received[] = [];
  /** The next N deliveries answer 500. */
  let failNext = 0;

  beforeAll(async () => {
    database = await freshDatabase();
    await database.db.insertInto('inventory_items').values({ sku: 'SKU-N', name: 'n', on_hand: 5 }).execute();
    // The shop's receiving end: ours to run in the test (loopback only).
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        if (failNext > 0) {
          failNext--;
          res.writeHead(500).end();
          return;
        }
        received.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await database.drop();
  });

  async function order(): Promise<string> {
    const orderId = uniqueId('ord');
    await insertOrder(database.db, {
      id: orderId,
      number: `WB-${orderId.slice(-6)}`,
      customerId: 'cus_1',
      email: 'shopper@example.com',
      currency: 'MYR',
      courier: CourierCode.SIMULATOR,
      shippingAddress: { name: 'A', line1: '1 Jalan', city: 'Shah Alam', postcode: '40000', country: 'MY' },
      lines: [{ lineNo: 1, sku: 'SKU-N', name: 'n', quantity: 1, unitAmount: 100 }],
    });
    return orderId;
  }

  const row = (orderId: string) =>
    database.db
      .selectFrom('notifications')
      .selectAll()
      .where('order_id', '=', orderId)
      .executeTakeFirstOrThrow();

  it('posts a milestone to the shop webhook once, signed so the receiver can verify it', async () => {
    const activities = createOrderActivities({
      db: database.db,
      log: testLog,
      notifications: createWebhookTransport({ url, secret: SECRET }),
    });
    const orderId = await order();
    received.length = 0;
    await activities.notifyCustomer({ orderId, milestone: 'shipped' });
    await activities.notifyCustomer({ orderId, milestone: 'shipped' });

    expect(received).toHaveLength(1);
    const [delivery] = received;
    const timestamp = String(delivery!.headers['x-waybill-timestamp']);
    const expected = `sha256=${createHmac('sha256', SECRET).update(`${timestamp}.${delivery!.body}`).digest('hex')}`;
    expect(delivery!.headers['x-waybill-signature']).toBe(expected);
    expect(delivery!.headers['x-waybill-event-id']).toBe(`order:${orderId}:shipped`);
    expect(JSON.parse(delivery!.body)).toMatchObject({
      kind: 'shipped',
      recipient: 'shopper@example.com',
      payload: { milestone: 'shipped' },
    });
    expect(await row(orderId)).toMatchObject({
      channel: 'webhook',
      status: 'SENT',
      attempts: 1,
      last_error: null,
    });
  });

  it('records a failed delivery on the row and delivers on the retry', async () => {
    const activities = createOrderActivities({
      db: database.db,
      log: testLog,
      notifications: createWebhookTransport({ url, secret: SECRET }),
    });
    const orderId = await order();
    received.length = 0;
    failNext = 1;
    await expect(activities.notifyCustomer({ orderId, milestone: 'delivered' })).rejects.toThrow(
      'notification webhook answered 500',
    );
    expect(await row(orderId)).toMatchObject({
      status: 'PENDING',
      attempts: 1,
      last_error: 'notification webhook answered 500',
    });

    await activities.notifyCustomer({ orderId, milestone: 'delivered' });
    expect(received).toHaveLength(1);
    expect(await row(orderId)).toMatchObject({ status: 'SENT', attempts: 2, last_error: null });
  });

  it('uses the log transport when no webhook is configured', async () => {
    const activities = createOrderActivities({ db: database.db, log: testLog });
    const orderId = await order();
    received.length = 0;
    await activities.notifyCustomer({ orderId, milestone: 'confirmed' });
    expect(received).toHaveLength(0);
    expect(await row(orderId)).toMatchObject({ channel: 'log', status: 'SENT', attempts: 1 });
  });

  it('the log transport names the notification and a masked address, never the e-mail address', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const activities = createOrderActivities({ db: database.db, log });
    const orderId = await order();
    await activities.notifyCustomer({ orderId, milestone: 'shipped' });

    const logged = lines.join('');
    expect(logged).not.toContain('shopper@example.com');
    expect(logged).not.toContain('shopper');
    const notification = lines
      .map((line) => JSON.parse(line) as { notification?: Record<string, unknown> })
      .find((entry) => entry.notification)!.notification;
    expect(notification).toMatchObject({
      eventId: `order:${orderId}:shipped`,
      kind: 'shipped',
      recipient: 's***@example.com',
    });
  });
});
