/**
 * `npm run token -- customer cus_123` or `npm run token -- admin alice [hours]`: prints a
 * bearer token signed with WAYBILL_JWT_SECRET (the development default unless set).
 */
import { signToken } from '../api/tokens';
import { loadConfig } from '../config';
import { runMain, StartupError } from '../main-helpers';

runMain(async () => {
  const [role, subject, hours = '24'] = process.argv.slice(2);
  if ((role !== 'customer' && role !== 'admin') || !subject || !/^\d+$/.test(hours)) {
    throw new StartupError('usage: npm run token -- <customer|admin> <id> [hours, default 24]');
  }
  const config = loadConfig();
  const token = signToken(
    config.api.jwtSecret,
    role === 'admin' ? { sub: subject, role: 'admin' } : { sub: subject },
    Number(hours) * 3_600_000,
  );
  process.stdout.write(`${token}\n`);
});
