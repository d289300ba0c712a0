// sdk_concurrent.mjs: N clients (one openai SDK client each) send one
// completion at the same moment; prints one JSON line: ok, failed, errors,
// elapsed_ms. Env: QT_BASE_URL, QT_TOKEN, QT_MODEL, QT_CLIENTS.
import OpenAI from 'openai';

const n = Number(process.env.QT_CLIENTS || 50);
const clients = Array.from({ length: n }, () => new OpenAI({
  baseURL: process.env.QT_BASE_URL, apiKey: process.env.QT_TOKEN, maxRetries: 0, timeout: 60000 }));
const t0 = Date.now();
const results = await Promise.allSettled(clients.map((c, i) => c.chat.completions.create({
  model: process.env.QT_MODEL, max_tokens: 16,
  messages: [{ role: 'user', content: `client ${i} says hello` }] })));
const elapsed = Date.now() - t0;
const ok = results.filter((r) => r.status === 'fulfilled' && r.value.choices?.[0]?.message?.content).length;
const errors = [...new Set(results.filter((r) => r.status === 'rejected')
  .map((r) => `${r.reason?.constructor?.name} ${r.reason?.status}: ${r.reason?.message}`.slice(0, 200)))];
console.log(JSON.stringify({ ok, failed: n - ok, errors, elapsed_ms: elapsed }));
