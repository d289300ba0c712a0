// metrics.mjs FILE: parses quotatop's /metrics with a Prometheus text-format
// parser nobody here wrote and checks the families, their types, the
// histograms and label escaping. Prints PASS/FAIL lines.
import fs from 'node:fs';
import parse from 'parse-prometheus-text-format';
import { reporter } from './report.mjs';

const { pass, fail, check } = reporter('metrics');

let fams;
try {
  fams = parse(fs.readFileSync(process.argv[2], 'utf8'));
  pass('the text parses');
} catch (e) {
  fail('the text parses', e.message);
  process.exit(0);
}
const byName = Object.fromEntries(fams.map((f) => [f.name, f]));
const want = {
  quotatop_requests_total: 'COUNTER', quotatop_upstream_429_total: 'COUNTER',
  quotatop_retries_total: 'COUNTER', quotatop_fallbacks_total: 'COUNTER',
  quotatop_circuit_state: 'GAUGE', quotatop_queue_depth: 'GAUGE', quotatop_jobs_waiting: 'GAUGE',
  quotatop_tokens_total: 'COUNTER',
  quotatop_spend_usd_total: 'COUNTER', quotatop_limit: 'GAUGE', quotatop_used: 'GAUGE',
  quotatop_request_duration_seconds: 'HISTOGRAM', quotatop_jobs_total: 'COUNTER',
};
for (const [name, type] of Object.entries(want))
  check(`${name} is a ${type.toLowerCase()}`, byName[name]?.type === type, byName[name]?.type ?? 'missing');
check('every family has HELP', fams.every((f) => f.help && f.help.length > 0),
      fams.filter((f) => !f.help).map((f) => f.name));

const rq = byName.quotatop_requests_total?.metrics ?? [];
const labels = (m) => Object.keys(m.labels ?? {}).sort().join(',');
check('requests_total labels are model, provider, status', rq.length > 0 && rq.every((m) => labels(m) === 'model,provider,status'),
      rq.map(labels));
const paced = rq.find((m) => m.labels.model === 'paced' && m.labels.status === 'ok');
check('requests_total counts the 50 paced requests', Number(paced?.value) === 50, paced?.value);
const r429 = byName.quotatop_upstream_429_total?.metrics?.[0]?.value;
check('upstream_429_total is 0', Number(r429) === 0, r429);

// This parser folds every series of a histogram family into one object and
// drops their labels, so one labelled series is read from the text itself
// (the syntax was checked above; promtool checks the structure too).
const text = fs.readFileSync(process.argv[2], 'utf8');
const series = (suffix) => text.split('\n')
  .filter((l) => l.startsWith(`quotatop_request_duration_seconds_${suffix}{model="paced"`));
const buckets = series('bucket').map((l) => [l.match(/le="([^"]+)"/)?.[1], Number(l.split(' ').pop())]);
const les = buckets.map((b) => b[0]);
check('histogram has le buckets up to +Inf', les.length >= 10 && les[les.length - 1] === '+Inf', les);
check('histogram buckets are cumulative', buckets.every((b, i) => i === 0 || b[1] >= buckets[i - 1][1]),
      buckets.map((b) => b[1]));
const count = Number(series('count')[0]?.split(' ').pop());
const sum = Number(series('sum')[0]?.split(' ').pop());
check('histogram count = +Inf bucket = 50', count === 50 && buckets[buckets.length - 1]?.[1] === 50, count);
check('histogram sum is positive', sum > 0, sum);
check('histogram family parsed as one', byName.quotatop_request_duration_seconds?.metrics?.length >= 1, '');

const wf = (byName.quotatop_jobs_total?.metrics ?? []).map((m) => m.labels.workflow);
check('label escaping round-trips', wf.includes('odd"wf"\\here'), wf);
const spend = (byName.quotatop_spend_usd_total?.metrics ?? []).find((m) => m.labels.workflow === 'default');
check('spend by workflow is positive', spend && Number(spend.value) > 0, spend?.value);
