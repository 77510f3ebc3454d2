/** The shape of Waybill's configuration ({@link Config}) and the names it is built from. */
import type { TextKeys } from '../codec/sealed-text';
import type { EasyParcelShipping } from '../couriers/easyparcel-orders';

/** Shipment statuses that have a poll interval (terminal statuses stop polling). */
export const POLLED_STATUSES = [
  'PENDING',
  'INFO_RECEIVED',
  'IN_TRANSIT',
  'OUT_FOR_DELIVERY',
  'AVAILABLE_FOR_PICKUP',
  'ATTEMPT_FAIL',
  'EXCEPTION',
] as const;
export type PolledStatus = (typeof POLLED_STATUSES)[number];

/**
 * Where the process runs (`WAYBILL_ENV`). `development` (the default) accepts the published
 * development credentials so `npm start` works out of the box; `production` refuses them and
 * has no default for any credential. Behaviour never branches on `NODE_ENV`.
 */
export const WAYBILL_ENVS = ['development', 'production'] as const;
export type WaybillEnv = (typeof WAYBILL_ENVS)[number];

/** JWS algorithms a staff key may use, chosen by its key type (never by the token's header). */
export type StaffKeyAlgorithm = 'ES256' | 'RS256' | 'EdDSA';

/** A key of the staff identity provider: public (verifies, in the API) or private (signs, `npm run token`). */
export interface StaffKey {
  /** The JWK `kid`; a staff token names its key in its header. */
  readonly kid: string;
  readonly alg: StaffKeyAlgorithm;
  /** SPKI (public) or PKCS#8 (private) PEM. */
  readonly pem: string;
}

/** The couriers an order's parcels can be booked with. */
export const ORDER_COURIERS = ['easyparcel', 'bluedart', 'simulator', 'fleet'] as const;
export type OrderCourier = (typeof ORDER_COURIERS)[number];

export interface Config {
  readonly env: WaybillEnv;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  readonly api: {
    readonly host: string;
    readonly port: number;
    /**
     * HS256 secret of customer bearer tokens (the shop's login signs them). Empty in
     * production when WAYBILL_JWT_SECRET is unset: no customer token verifies, and
     * {@link apiCredentialProblems} keeps the API from starting.
     */
    readonly jwtSecret: string;
    /** True while {@link jwtSecret} is the published development default. */
    readonly jwtSecretIsDefault: boolean;
    /** `iss` every customer token must carry. */
    readonly jwtIssuer: string;
    /** `aud` every bearer token (customer and staff) must carry. */
    readonly jwtAudience: string;
    /** A customer token older than this (from its `iat`) is refused whatever its `exp` (ms). */
    readonly jwtMaxAgeMs: number;
    /**
     * Public keys that verify staff tokens (admin, ops, support), from WAYBILL_STAFF_JWKS.
     * Staff tokens are signed by the staff identity provider's private key, which the API
     * never holds: nothing that can mint customer tokens can mint staff ones. Empty: staff
     * tokens are refused (API keys only).
     */
    readonly staffJwtKeys: readonly StaffKey[];
    readonly staffJwtKeysAreDefault: boolean;
    /** `iss` of staff tokens; it must differ from {@link jwtIssuer}. */
    readonly staffJwtIssuer: string;
    readonly staffJwtMaxAgeMs: number;
    /** SHA-256 (hex) of each admin API key accepted in `x-api-key`; the keys themselves are never stored. Empty: API keys are refused. */
    readonly adminApiKeyHashes: readonly string[];
    readonly adminApiKeyIsDefault: boolean;
    /** Requests per minute per client IP, all routes. */
    readonly rateLimitPerMinute: number;
    /** Guest lookups (order number + email/postcode) per minute per IP: wrong proofs are guesses. */
    readonly guestRateLimitPerMinute: number;
    /**
     * Clients each rate limit remembers (least recently seen forgotten first). A forgotten
     * client's count starts again, so it must exceed the distinct clients of one minute.
     */
    readonly rateLimitClients: number;
    /** How long `?refresh=true` waits for the shipment workflow's fresh poll before answering from cache (ms). */
    readonly refreshDeadlineMs: number;
    /** How long an admin's retry of a parked step is waited for before 202 STILL_RUNNING (ms). */
    readonly adminActionWaitMs: number;
    /**
     * Live refreshes per customer per {@link refreshQuotaWindowMs}: each parcel the API asks
     * its workflow to poll counts one (parcels inside the cooldown never reach the workflow
     * and count nothing). Kept in Postgres, so it holds across API processes. Admins have none.
     */
    readonly refreshQuota: number;
    readonly refreshQuotaWindowMs: number;
    // --- Freshness (src/domain/freshness.ts) ---
    /**
     * How the API judges a parcel's data against its workflow's `next_poll_at` (ms): a poll
     * may run `graceMs` late before the parcel reads stale; data not kept current and older
     * than `expiredAfterMs` reads expired.
     */
    readonly freshness: { readonly graceMs: number; readonly expiredAfterMs: number };
    // --- end of freshness ---
    /** Interval between SSE heartbeat comments on a tracking stream, so proxies keep it open (ms). */
    readonly streamHeartbeatMs: number;
    /** Tracking streams one caller (customer or staff member) may hold open at once, per API process. */
    readonly streamMaxPerCaller: number;
    /** Tracking streams one API process holds open at once, all callers together. */
    readonly streamMaxOpen: number;
    /** A tracking stream is ended after at most this long; the client reconnects with Last-Event-ID (ms). */
    readonly streamMaxLifetimeMs: number;
    /** HMAC-SHA256 secret per courier for `POST /v1/webhooks/couriers/:courier`; a courier without one is refused. */
    readonly courierWebhookSecrets: Readonly<Record<string, string>>;
    /**
     * The secret in EasyParcel's webhook URL (`POST /v1/webhooks/easyparcel/native/:token`):
     * EasyParcel signs nothing, so the URL is the credential. Null: that route answers 404.
     */
    readonly easyParcelWebhookToken: string | null;
    /** The courier of parcels from a warehouse `courierByWarehouse` does not name. */
    readonly defaultCourier: OrderCourier;
    /**
     * The courier each warehouse's parcels go with (WAYBILL_COURIER_BY_WAREHOUSE): the
     * server decides, never the customer. Keys are inventory locations (`ship from`).
     */
    readonly courierByWarehouse: Readonly<Record<string, OrderCourier>>;
    /** A webhook whose signed timestamp is older (or further ahead) than this is refused (ms). */
    readonly webhookMaxAgeMs: number;
    /** A pushed scan timed further ahead of our clock than this is refused (ms): it would stop no-scan expiry. */
    readonly pushMaxClockSkewMs: number;
    /**
     * An open fleet run with parcels still in the van and no driver report for this long
     * raises the silent-run alarm (ms; docs/fleet.md).
     */
    readonly fleetSilentRunAfterMs: number;
    /**
     * Which proxies' X-Forwarded-For to believe for the client address (rate limits, logs):
     * false (none: the socket address), a hop count, or proxy addresses / CIDR ranges.
     */
    readonly trustProxy: boolean | number | readonly string[];
    /** The API's Prometheus endpoint listens here, apart from the public port; null when WAYBILL_METRICS_PORT is 0. */
    readonly metricsHost: string;
    readonly metricsPort: number | null;
    /** How long a new order's courier booking keeps retrying through a courier outage before the order fails (ms). */
    readonly bookingRetryWindowMs: number;
    /** Capture, void, refund and booking cancels retry through outages this long before the order is parked (NEEDS_ATTENTION). */
    readonly settleRetryWindowMs: number;
  };
  readonly database: {
    /** Connection string; when DATABASE_URL is unset this points at the embedded server. */
    readonly url: string;
    /** True when DATABASE_URL is unset: the dev stack runs an embedded Postgres. */
    readonly embedded: boolean;
    readonly embeddedPort: number;
    readonly poolMax: number;
  };
  readonly temporal: {
    readonly address: string;
    /** True when TEMPORAL_ADDRESS is set: use that server, start none. */
    readonly external: boolean;
    readonly namespace: string;
    readonly tls: boolean;
    readonly tlsCertPath: string | null;
    readonly tlsKeyPath: string | null;
    readonly apiKey: string | null;
    readonly uiPort: number;
    /** gRPC port of the dev server `npm start` runs when TEMPORAL_ADDRESS is unset. */
    readonly devPort: number;
    readonly cliPath: string | null;
    readonly taskQueue: string;
    readonly courierTaskQueue: string;
  };
  readonly courier: {
    readonly simulatorHost: string;
    /** Courier time per real time in the simulator (1 = real time; 1440 = a courier day per minute). */
    readonly simulatorTimeScale: number;
    readonly simulatorPort: number;
    readonly simulatorUrl: string;
    /** Calls per courier per UTC day; polls stop at it less `bookingReserve`, bookings at it; a refused poll waits for the next day. */
    readonly dailyBudget: number;
    /** Of the daily budget, the calls polls leave to bookings (polls stop at budget − reserve). */
    readonly bookingReserve: number;
    /** Tracking calls per courier in flight at once on one worker (each carries up to a batch of polls). */
    readonly concurrency: number;
    /**
     * Tracking calls per courier started per second on one worker (its batcher); the courier task
     * queue (bookings, cancels, last polls) starts this times the largest batch per second.
     */
    readonly callsPerSecond: number;
    /**
     * Requests to one courier started in any second of Postgres's clock across every worker:
     * polls, bookings, cancels and token requests, each in a slot 1/this s after the one
     * before. One whose slot is ahead waits for it (one that cannot start within 4 s fails at
     * once as not sent and is retried: src/activities/courier-budget.ts).
     */
    readonly requestsPerSecond: number;
    /** One courier HTTP call gives up after this long (ms). */
    readonly timeoutMs: number;
    /**
     * A bulk tracking call in flight this long (ms) means its courier is not answering: until a
     * call answers within it again, the worker puts that courier's polls off on their
     * workflows' retry timers instead of holding a workflow-task slot each. Below `timeoutMs`.
     */
    readonly slowAfterMs: number;
    readonly easyParcel: {
      /** EasyParcel's root: `/oauth/token` and `/open_api/<apiVersion>/…` under it. */
      readonly baseUrl: string;
      /** The Open API version spoken (src/couriers/easyparcel-versions.ts). */
      readonly apiVersion: string;
      /** The status code table (`0-11` or `1-11`); null: the only one the version's docs showed. */
      readonly statusCodes: string | null;
      readonly clientId: string;
      readonly clientSecret: string;
      /** From the one-time OAuth authorisation of the app on the EasyParcel account. */
      readonly refreshToken: string;
      /** Most AWB numbers per tracking call. */
      readonly maxBatch: number;
      /** The payload keys (WAYBILL_PAYLOAD_KEYS), which seal the token pair kept in `courier_tokens`. */
      readonly tokenKeys: TextKeys;
      /** The service booked, the shop's sender address and phone, the receiver phone fallback. */
      readonly shipping: EasyParcelShipping;
    };
    readonly blueDart: { readonly baseUrl: string; readonly loginId: string; readonly licenceKey: string };
    // ---- Bulk tracking (issue 16) ----
    /** A courier's bulk tracking call waits this long for more polls to join (ms); 0: one call per poll. */
    readonly batchWindowMs: number;
  };
  readonly payments: {
    /** The payment provider's API; by default the payment simulator `npm start` runs. */
    readonly baseUrl: string;
    readonly apiKey: string | null;
    readonly host: string;
    readonly simulatorPort: number;
    readonly timeoutMs: number;
  };
  readonly notifications: {
    /** POST customer notifications here, signed with the secret; unset: the log transport. */
    readonly webhookUrl: string | null;
    readonly webhookSecret: string | null;
  };
  // ---- Domain events out (issue 18) ----
  readonly events: {
    /** The dispatcher looks for due deliveries this often when idle (ms). */
    readonly pollIntervalMs: number;
    /** First retry delay of a failed delivery, doubled per failure, with jitter (ms). */
    readonly retryBaseMs: number;
    /** Longest retry delay (ms). */
    readonly retryMaxMs: number;
    /** Consecutive failed deliveries after which an endpoint is disabled. */
    readonly disableAfterFailures: number;
    /** One delivery request's time limit (ms). */
    readonly timeoutMs: number;
    /** Whether endpoints may be plain http:// URLs (default: yes in development, no in production). */
    readonly allowPlainHttp: boolean;
  };
  readonly polling: {
    /** Milliseconds to wait before the next poll, per current status. */
    readonly intervalMs: Readonly<Record<PolledStatus, number>>;
    /** Upper bound of the exponential backoff while the courier is unreachable (ms). */
    readonly backoffCapMs: number;
    /** No new scan for this long → EXPIRED (ms). */
    readonly expireAfterNoScanMs: number;
    /** Tracking stops after this age whatever the status (ms). */
    readonly maxAgeMs: number;
    /** A refresh polls a parcel's courier at most once per this long, whoever asks (ms). */
    readonly refreshCooldownMs: number;
    // ---- Bulk tracking (issue 16) ----
    /** EasyParcel's own polling, bulk calls in mind (src/poll-policy.ts): all in ms. */
    readonly easyParcel: {
      /** A moving parcel (pending to out for delivery, failed attempt, returning). */
      readonly intervalMs: number;
      /** At a counter, under investigation, or a day without a new scan. */
      readonly quietIntervalMs: number;
      /** Scheduled polls fall on multiples of this: polls due together share bulk calls. */
      readonly slotMs: number;
      /** Polls wanted at least this far off (quiet parcels, pushed ones' fallback) fall on multiples of this. */
      readonly quietSlotMs: number;
      /** No poll waiting for a door scan in this Malaysia-time window (minutes after midnight); null: off. */
      readonly night: { readonly fromMinute: number; readonly toMinute: number } | null;
      /** A parcel EasyParcel pushed about within `quietAfterMs` is polled at most every `fallbackIntervalMs`. */
      readonly push: {
        readonly fallbackIntervalMs: number;
        readonly quietAfterMs: number;
      };
    };
  };
  readonly worker: {
    /** Where the worker serves Prometheus metrics (`/metrics`): Temporal's and Waybill's own. */
    readonly metricsHost: string;
    /** Null when WAYBILL_WORKER_METRICS_PORT is 0: no metrics endpoint. */
    readonly metricsPort: number | null;
  };
  /**
   * How much one worker process takes on at once (docs/benchmarks.md#worker-sizing has the
   * measurements the defaults come from). The sticky cache must hold every open workflow the
   * worker serves, and its heap (NODE_OPTIONS=--max-old-space-size) must hold the cache.
   */
  readonly workerSizing: {
    /** Workflows kept in memory between their tasks; one evicted is replayed from its history. */
    readonly maxCachedWorkflows: number;
    /** Workflow-task pollers and slots (main task queue); a local poll holds its slot while it waits for its call. */
    readonly workflowTaskPollers: number;
    readonly workflowTaskSlots: number;
    /** Activity-task pollers and slots (main task queue: read-model writes, saga steps). */
    readonly activityTaskPollers: number;
    readonly activityTaskSlots: number;
    /** Activity-task pollers of the courier task queue (its slots: `courier.concurrency` times the largest batch). */
    readonly courierTaskPollers: number;
    /** The worker's Postgres pool: one connection per activity slot of both task queues. */
    readonly dbPoolMax: number;
    /**
     * A shipment workflow continues as new after this many polls: it bounds the history an
     * evicted workflow replays (open parcels beyond the cache are replayed at every poll).
     */
    readonly shipmentPollsPerRun: number;
    /** Threads running workflow code: activations of workflows on different threads run at once. */
    readonly workflowThreads: number;
    /** Workflow modules evaluated once per workflow thread and shared (src/workflow-bundle.ts). */
    readonly sharedWorkflowModules: boolean;
  };
  readonly schedules: {
    /** The daily report runs this long after UTC midnight (ms), for the UTC day before. */
    readonly dailyReportOffsetMs: number;
    /** Housekeeping runs this often (ms). */
    readonly housekeepingEveryMs: number;
  };
  readonly housekeeping: {
    /** Finished shipments are archived (`archived_at`) this long after they finished (ms). */
    readonly archiveAfterMs: number;
    /** Personal data is scrubbed from stored raw courier payloads this long after a shipment finished (ms). */
    readonly scrubPersonalDataAfterMs: number;
    /** Rows one housekeeping activity handles at once. */
    readonly batchSize: number;
    /** Batches per step per housekeeping run: the bound on one run's work. */
    readonly maxBatches: number;
    /**
     * A PENDING order this old whose order workflow never started (the start failed and the
     * client did not retry) is closed as FAILED / NOT_STARTED (ms).
     */
    readonly orderStartGraceMs: number;
    /**
     * Finished `Idempotency-Key` records are deleted this long after the request (ms): a
     * retry with a pruned key is a new request. Keys of orders still PENDING are kept.
     */
    readonly pruneIdempotencyKeysAfterMs: number;
    /** Courier push dedupe rows (`courier_webhook_events`) are deleted this long after receipt (ms); longer than WAYBILL_WEBHOOK_MAX_AGE. */
    readonly pruneWebhookEventsAfterMs: number;
    /** Sent or given-up customer notifications are deleted this long after they were created (ms); pending ones never. */
    readonly pruneNotificationsAfterMs: number;
    /**
     * Domain events no enabled endpoint waits for (delivered everywhere, or pending only at a
     * disabled endpoint) are deleted with their deliveries and attempts this long after they
     * occurred (ms); an event still pending at an enabled endpoint never.
     */
    readonly pruneEventsAfterMs: number;
  };
  /**
   * The payload codec (src/codec): every payload Waybill's clients and workers send to Temporal
   * is sealed with AES-256-GCM under the active key; every listed key opens.
   */
  readonly payloads: {
    /** Key id → base64 of a 32-byte AES-256 key, from WAYBILL_PAYLOAD_KEYS. Empty in production when unset. */
    readonly keys: Readonly<Record<string, string>>;
    /** The key new payloads are sealed with (WAYBILL_PAYLOAD_KEY_ACTIVE). */
    readonly activeKeyId: string;
    /** True while the published development key is listed. */
    readonly keysAreDefault: boolean;
    /** Browser origins (the Temporal UI's) allowed to call the codec server with credentials. */
    readonly codecCorsOrigins: readonly string[];
    /** Codec server requests per minute per client address: the UI sends one per payload group. */
    readonly codecRateLimitPerMinute: number;
  };
  /** Only `npm run token` reads this: the private key that signs staff tokens in development and tests. */
  readonly tokens: {
    /** From WAYBILL_STAFF_JWT_SIGNING_KEY; in development the published development key; in production unset → null. */
    readonly staffSigningKey: StaffKey | null;
  };
  readonly paths: {
    /** Dev-stack state: Postgres data, Temporal SQLite file. */
    readonly dataDir: string;
    /** Cache outside the repo for the Temporal CLI build. */
    readonly cacheDir: string;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}
