// sdk_responses.mjs: the official openai SDK's Responses API and embeddings
// against `quotatop serve`: plain and streamed responses, usage, function
// calls, the 400 when no model of the chain can carry a Responses request,
// embeddings single and batched (the SDK asks for base64 by default).
// Prints PASS/FAIL lines. Env: QT_BASE_URL, QT_TOKEN.
import OpenAI from 'openai';
import { reporter } from './report.mjs';

const client = new OpenAI({ baseURL: process.env.QT_BASE_URL, apiKey: process.env.QT_TOKEN,
  maxRetries: 0, timeout: 20000 });
const { pass, fail, check } = reporter('openai sdk');

async function main() {
  // ---- responses, plain
  const r = await client.responses.create({ model: 'gpt-4o', input: 'hello responses', instructions: 'be brief',
    max_output_tokens: 64 });
  check('responses: output_text', typeof r.output_text === 'string' && r.output_text.includes('simulated'),
        JSON.stringify(r).slice(0, 200));
  check('responses: object', r.object === 'response' && r.id.startsWith('resp_'), r.object);
  check('responses: usage', r.usage?.input_tokens > 0 && r.usage?.output_tokens > 0, JSON.stringify(r.usage));

  // ---- streamed: the events passed through, the same text
  const stream = await client.responses.create({ model: 'gpt-4o', input: 'hello responses',
    instructions: 'be brief', max_output_tokens: 64, stream: true });
  let text = '', done = null;
  const types = new Set();
  for await (const ev of stream) {
    types.add(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') done = ev.response;
  }
  check('responses stream: deltas add up to the plain text', text === r.output_text, `${text} vs ${r.output_text}`);
  check('responses stream: response.created', types.has('response.created'), [...types].join(','));
  check('responses stream: response.completed with usage', done?.usage?.output_tokens > 0, JSON.stringify(done?.usage));

  // ---- a function call
  const f = await client.responses.create({ model: 'gpt-4o', input: 'weather in Rome?', tool_choice: 'required',
    tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object',
      properties: { city: { type: 'string' } }, required: ['city'] } }] });
  const call = f.output.find((o) => o.type === 'function_call');
  check('responses: a function_call', call?.name === 'get_weather' && JSON.parse(call.arguments).city,
        JSON.stringify(f.output));

  // ---- previous_response_id passes through (the state lives at the upstream)
  const next = await client.responses.create({ model: 'gpt-4o', input: 'and then?', previous_response_id: r.id });
  check('responses: previous_response_id accepted', next.object === 'response', JSON.stringify(next).slice(0, 200));

  // ---- no model of the chain can carry it: a 400, not a retry
  try {
    await client.responses.create({ model: 'claude', input: 'hi' });
    fail('responses to an anthropic-only chain: 400', 'no exception');
  } catch (e) {
    check('responses to an anthropic-only chain: 400', e instanceof OpenAI.BadRequestError,
          `${e?.constructor?.name} ${e?.message}`);
  }

  // ---- embeddings
  const e1 = await client.embeddings.create({ model: 'emb', input: 'one two three four' });
  check('embeddings: one vector', e1.data.length === 1 && e1.data[0].embedding.length === 16,
        JSON.stringify(e1).slice(0, 200));
  check('embeddings: numbers', e1.data[0].embedding.every((x) => typeof x === 'number' && x >= -1 && x <= 1),
        e1.data[0].embedding.slice(0, 4).join(','));
  check('embeddings: usage counts input only', e1.usage.prompt_tokens === 5 && e1.usage.total_tokens === 5,
        JSON.stringify(e1.usage));
  const e2 = await client.embeddings.create({ model: 'emb', input: ['alpha', 'beta', 'gamma'], dimensions: 8,
    encoding_format: 'float' });
  check('embeddings: a batch gives one vector each', e2.data.length === 3 && e2.data[2].embedding.length === 8,
        JSON.stringify(e2).slice(0, 200));
  check('embeddings: a batch counts each item', e2.usage.prompt_tokens === 5, JSON.stringify(e2.usage));
}

main().catch((e) => { fail('script', e?.stack || e); });
