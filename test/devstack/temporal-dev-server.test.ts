/**
 * The dev server is started again when it does not answer within the SDK's fixed 5 s (a busy
 * machine once made a fresh clone's test run fail before its first test). A wrapper around the
 * real CLI stands for a slow first start: the first time it only sleeps, then it runs the CLI.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PortTakenError, startTemporalDevServer } from '../../devstack/temporal-server';
import { testTemporalCliPath } from '../support/env';

jest.setTimeout(60_000);

describe('starting the Temporal dev server', () => {
  it('starts it again when the first start does not answer within the SDK’s 5 s', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waybill-slow-cli-'));
    const firstStart = path.join(dir, 'first-start');
    const wrapper = path.join(dir, 'temporal');
    fs.writeFileSync(
      wrapper,
      `#!/bin/sh\nif [ ! -e '${firstStart}' ]; then touch '${firstStart}'; exec sleep 30; fi\nexec '${await testTemporalCliPath()}' "$@"\n`,
      { mode: 0o755 },
    );
    try {
      const server = await startTemporalDevServer({
        executable: { type: 'existing-path', path: wrapper },
        namespace: 'default',
        searchAttributes: false,
      });
      try {
        expect(fs.existsSync(firstStart)).toBe(true);
        const info = await server.env.client.workflowService.getSystemInfo({});
        expect(info.serverVersion).toMatch(/^\d+\.\d+/);
      } finally {
        await server.stop();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says at once which port is taken, instead of waiting out the SDK’s 5 s once per attempt', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      const started = Date.now();
      const outcome = await startTemporalDevServer({
        executable: { type: 'existing-path', path: await testTemporalCliPath() },
        namespace: 'default',
        port: taken,
        searchAttributes: false,
      }).then(
        async (server) => {
          await server.stop();
          return 'started';
        },
        (err: unknown) => err,
      );
      expect(outcome).toBeInstanceOf(PortTakenError);
      expect((outcome as Error).message).toBe(
        `port ${taken} (the dev server's gRPC) is taken by another process`,
      );
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});
