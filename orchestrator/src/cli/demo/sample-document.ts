/**
 * The demo's document: a synthetic but realistic operations log of a logistics platform for one
 * quarter (about 300 KB), generated deterministically (a seeded PRNG, no clock), with a dozen
 * incidents scattered through it and their postmortems in an appendix far from them. The planted
 * fact: INC-2291 was the longest outage, and only its postmortem names the root cause.
 */

/** What the demo asks about the document. */
export const DEMO_QUERY = 'Which incident in this operations log caused the longest outage, how long did it last, and what was its root cause?';

/** The facts the demo's answer must contain (the tests check them). */
export const PLANTED_FACT = {
  incident: 'INC-2291',
  minutes: 487,
  change: 'CHG-4471',
  device: 'sw-core-07',
} as const;

interface Incident {
  day: number;
  id: string;
  severity: string;
  service: string;
  opened: string;
  minutes: number;
  summary: string;
  postmortem: string;
}

const INCIDENTS: readonly Incident[] = [
  {
    day: 4,
    id: 'INC-2107',
    severity: 'sev3',
    service: 'label-printer',
    opened: 'label jobs queueing in eu-west',
    minutes: 38,
    summary: 'label printing delayed in eu-west while a print spooler was restarted',
    postmortem: 'a spooler memory leak after 40 days of uptime; spoolers now restart weekly',
  },
  {
    day: 11,
    id: 'INC-2139',
    severity: 'sev2',
    service: 'payments-api',
    opened: 'elevated 502 rate at the edge',
    minutes: 46,
    summary: 'payments-api returned 502s during a node pool rotation',
    postmortem: 'the node pool was drained faster than the pod disruption budget allowed; CHG-4102 fixed the drain rate',
  },
  {
    day: 17,
    id: 'INC-2160',
    severity: 'sev3',
    service: 'route-planner',
    opened: 'planner latency p99 above 9 s',
    minutes: 72,
    summary: 'route planning slow after a cache eviction storm',
    postmortem: 'a cache key change in release 2026.01.3 invalidated the whole route cache at once',
  },
  {
    day: 23,
    id: 'INC-2188',
    severity: 'sev2',
    service: 'customs-gateway',
    opened: 'customs declarations rejected by the partner API',
    minutes: 131,
    summary: 'customs declarations failed after the partner rotated its TLS certificate',
    postmortem: 'our pinned intermediate certificate expired with the partner rotation; pinning removed under CHG-4219',
  },
  {
    day: 30,
    id: 'INC-2203',
    severity: 'sev3',
    service: 'driver-app',
    opened: 'driver app login errors',
    minutes: 25,
    summary: 'driver logins failed for 25 minutes after an identity provider deploy',
    postmortem: 'a misconfigured redirect URI in the identity provider; rolled back',
  },
  {
    day: 38,
    id: 'INC-2231',
    severity: 'sev2',
    service: 'inventory-sync',
    opened: 'inventory sync lag above 30 min',
    minutes: 164,
    summary: 'inventory sync lagged while the message broker rebalanced partitions',
    postmortem: 'a broker upgrade triggered a full partition rebalance during peak hours',
  },
  {
    day: 45,
    id: 'INC-2254',
    severity: 'sev3',
    service: 'billing-batch',
    opened: 'nightly invoice batch did not finish',
    minutes: 96,
    summary: 'the nightly invoice batch ran over its window after a slow query',
    postmortem: 'a missing index on invoices.customer_id after a schema migration',
  },
  {
    day: 52,
    id: 'INC-2291',
    severity: 'sev1',
    service: 'warehouse-scanners',
    opened: 'handheld scanners offline in three warehouses',
    minutes: 487,
    summary: 'warehouse scanners offline and inventory sync stalled across three regions',
    postmortem:
      'firmware 4.2.1, pushed to core switch sw-core-07 under change CHG-4471, dropped the VLAN that carries scanner traffic; the firmware was rolled back and the change process now requires a canary switch',
  },
  {
    day: 58,
    id: 'INC-2302',
    severity: 'sev2',
    service: 'tracking-api',
    opened: 'tracking pages showing stale positions',
    minutes: 212,
    summary: 'tracking positions were stale while a GPS ingest consumer was stuck',
    postmortem: 'a poison message blocked the GPS ingest consumer; dead-letter handling added',
  },
  {
    day: 66,
    id: 'INC-2340',
    severity: 'sev3',
    service: 'email-notify',
    opened: 'delivery notification emails delayed',
    minutes: 58,
    summary: 'delivery emails delayed by a rate limit at the mail provider',
    postmortem: 'a marketing campaign shared the transactional sending quota',
  },
  {
    day: 73,
    id: 'INC-2366',
    severity: 'sev2',
    service: 'payments-api',
    opened: 'card authorisations timing out',
    minutes: 301,
    summary: 'card authorisations timed out during the acquirer maintenance window',
    postmortem: 'the acquirer maintenance notice went to an unmonitored mailbox; failover to the secondary acquirer is now automatic',
  },
  {
    day: 84,
    id: 'INC-2398',
    severity: 'sev3',
    service: 'route-planner',
    opened: 'planner returning empty routes for one depot',
    minutes: 44,
    summary: 'empty routes for the Leeds depot after a map data import',
    postmortem: 'the map import dropped a road class for one region; imports are now validated',
  },
];

const SERVICES = [
  'payments-api',
  'route-planner',
  'inventory-sync',
  'tracking-api',
  'driver-app',
  'customs-gateway',
  'label-printer',
  'billing-batch',
  'email-notify',
  'warehouse-scanners',
];
const HOSTS = ['ip-10-4-1-17', 'ip-10-4-2-41', 'ip-10-4-3-9', 'ip-10-6-1-88', 'ip-10-6-2-5', 'ip-10-8-1-203'];
const REGIONS = ['eu-west', 'eu-central', 'uk-south'];

/** A small, fast, seeded PRNG (mulberry32), so the document is the same on every machine. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The document: about 300 KB, the same bytes on every call.
 */
export function sampleDocument(): string {
  const rand = random(0x2291);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const int = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
  const start = Date.UTC(2026, 0, 5);
  const lines: string[] = [
    'HALVARD LOGISTICS — PLATFORM OPERATIONS LOG, Q1 2026',
    'Compiled from the on-call channel, the deploy pipeline and the service logs. Times are UTC.',
    'Incidents are logged as "INCIDENT <id> opened" and "INCIDENT <id> resolved after <minutes> min".',
    'Postmortems are collected in the appendix at the end of this log.',
    '',
  ];
  const templates: Array<() => string> = [
    () => `INFO  [${pick(SERVICES)}] request volume ${int(800, 9_000)}/min, p50 ${int(12, 90)} ms, p99 ${int(120, 900)} ms`,
    () =>
      `INFO  [deploy] ${pick(SERVICES)} release 2026.${String(int(1, 3)).padStart(2, '0')}.${int(1, 9)} rolled out to ${pick(REGIONS)} (${int(3, 24)} pods)`,
    () =>
      `INFO  [inventory-sync] batch ${int(10_000, 99_999)} committed: ${int(400, 9_800).toLocaleString('en-US')} records in ${(rand() * 3 + 0.2).toFixed(2)} s`,
    () => `WARN  [${pick(SERVICES)}] ${pick(HOSTS)} memory at ${int(78, 93)}% of limit`,
    () => `INFO  [scheduler] job ${pick(['reindex-parcels', 'rotate-logs', 'sync-rates', 'export-ledger', 'purge-sessions'])} finished in ${int(2, 340)} s`,
    () => `INFO  [tracking-api] ${int(20_000, 180_000).toLocaleString('en-US')} GPS positions ingested from ${int(300, 1_900)} vehicles`,
    () => `WARN  [payments-api] acquirer latency ${int(400, 2_400)} ms (threshold 400 ms)`,
    () => `INFO  [on-call] handover to ${pick(['A. Okafor', 'M. Lindqvist', 'S. Brennan', 'P. Duarte', 'R. Iyer', 'K. Novak'])}; ${int(0, 4)} open tickets`,
    () =>
      `ERROR [${pick(SERVICES)}] ${pick(['connection reset by peer', 'upstream timed out', 'deadlock detected, retrying', 'certificate verify warning', 'queue depth above 10k'])} (${pick(HOSTS)})`,
    () => `INFO  [warehouse-scanners] ${int(140, 620)} handhelds online across ${int(6, 9)} sites`,
    () => `INFO  [network] core switch ${pick(['sw-core-05', 'sw-core-06', 'sw-core-07', 'sw-core-08'])} health check ok (${int(11, 48)}% utilisation)`,
  ];
  for (let day = 0; day < 90; day++) {
    const date = new Date(start + day * 86_400_000);
    const isoDay = date.toISOString().slice(0, 10);
    lines.push(`=== ${isoDay} (${date.toLocaleDateString('en-GB', { weekday: 'short', timeZone: 'UTC' })}) ===`);
    const count = int(32, 44);
    const incident = INCIDENTS.find((i) => i.day === day);
    const incidentAt = int(4, count - 6);
    let minute = int(0, 20);
    for (let n = 0; n < count; n++) {
      minute += int(10, 45);
      const time = (offset = 0) => `${isoDay}T${clock(minute + offset)}:${String(int(0, 59)).padStart(2, '0')}Z`;
      if (incident && n === incidentAt) {
        lines.push(`${time()} INCIDENT ${incident.id} opened ${incident.severity} [${incident.service}]: ${incident.opened}`);
        lines.push(`${time(3)} INFO  [on-call] ${incident.id}: paged the ${incident.service} owners; status page updated`);
        if (incident.id === PLANTED_FACT.incident) {
          lines.push(`${time(5)} WARN  [network] ${PLANTED_FACT.device} reports VLAN 412 down on 48 ports`);
          lines.push(`${time(9)} INFO  [on-call] ${incident.id}: scanners fall back to paper picking lists in three warehouses`);
        }
        lines.push(`${time(incident.minutes)} INCIDENT ${incident.id} resolved after ${incident.minutes} min: ${incident.summary}`);
        minute += Math.min(incident.minutes, 120);
      } else {
        lines.push(`${time()} ${pick(templates)()}`);
      }
    }
    lines.push('');
  }
  lines.push('=== APPENDIX: POSTMORTEMS ===', '');
  for (const incident of [...INCIDENTS].sort((a, b) => a.id.localeCompare(b.id))) {
    lines.push(`POSTMORTEM ${incident.id} (${incident.service}, ${incident.severity}): root cause: ${incident.postmortem}.`);
    lines.push(`  follow-up actions for ${incident.id} are tracked in the platform backlog.`, '');
  }
  return `${lines.join('\n')}\n`;
}

function clock(minutes: number): string {
  const m = Math.min(minutes, 23 * 60 + 59);
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}
