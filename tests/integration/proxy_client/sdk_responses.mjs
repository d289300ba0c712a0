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

  // ---- to an Anthropic-kind model: translated (text, function tools), plain and streamed
  const a = await client.responses.create({ model: 'claude', input: 'hello responses', instructions: 'be brief',
    max_output_tokens: 64 });
  check('responses to claude: a response object', a.object === 'response' && a.id.startsWith('resp_')
        && a.status === 'completed', JSON.stringify(a).slice(0, 300));
  check('responses to claude: output_text', typeof a.output_text === 'string' && a.output_text.includes('simulated'),
        JSON.stringify(a.output).slice(0, 300));
  check('responses to claude: usage', a.usage?.input_tokens > 0 && a.usage?.output_tokens > 0
        && a.usage?.total_tokens === a.usage.input_tokens + a.usage.output_tokens, JSON.stringify(a.usage));
  const as = await client.responses.create({ model: 'claude', input: 'hello responses', instructions: 'be brief',
    max_output_tokens: 64, stream: true });
  let atext = '', adone = null, aseq = -1, seqOk = true;
  const atypes = [];
  for await (const ev of as) {
    atypes.push(ev.type);
    if (ev.sequence_number !== aseq + 1) seqOk = false;
    aseq = ev.sequence_number;
    if (ev.type === 'response.output_text.delta') atext += ev.delta;
    if (ev.type === 'response.completed') adone = ev.response;
  }
  check('responses stream to claude: deltas add up to the plain text', atext === a.output_text,
        `${atext} vs ${a.output_text}`);
  check('responses stream to claude: the events in order', atypes[0] === 'response.created'
        && atypes.includes('response.output_item.added') && atypes.includes('response.content_part.added')
        && atypes.includes('response.output_text.done') && atypes.at(-1) === 'response.completed', atypes.join(','));
  check('responses stream to claude: sequence numbers 0, 1, 2, ...', seqOk && atypes.length > 5, atypes.length);
  check('responses stream to claude: completed with output and usage', adone?.usage?.output_tokens > 0
        && adone?.output?.[0]?.content?.[0]?.text === a.output_text, JSON.stringify(adone).slice(0, 300));

  const wtools = [{ type: 'function', name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
  const fa = await client.responses.create({ model: 'claude', input: 'weather in Rome?', tool_choice: 'required',
    tools: wtools });
  const acall = fa.output.find((o) => o.type === 'function_call');
  check('responses to claude: a function_call', acall?.name === 'get_weather'
        && JSON.parse(acall.arguments).city === 'mock-city' && acall.call_id?.length > 0, JSON.stringify(fa.output));
  // the SDK's stream helper reassembles the arguments from the deltas
  const fs = client.responses.stream({ model: 'claude', input: 'weather in Rome?', tool_choice: 'required',
    tools: wtools });
  let argDeltas = 0;
  fs.on('response.function_call_arguments.delta', () => { argDeltas++; });
  const ff = await fs.finalResponse();
  const scall = ff.output.find((o) => o.type === 'function_call');
  check('responses stream to claude: function call arguments intact', scall?.name === 'get_weather'
        && scall?.arguments === acall?.arguments && argDeltas > 1, `${argDeltas} ${JSON.stringify(ff.output)}`);
  // a round trip: the call and its output go back, the model sees the result
  const back = await client.responses.create({ model: 'claude', tools: wtools, input: [
    { role: 'user', content: 'weather in Rome?' },
    { type: 'function_call', call_id: acall.call_id, name: 'get_weather', arguments: acall.arguments },
    { type: 'function_call_output', call_id: acall.call_id, output: 'sunny, 31C' }] });
  check('responses to claude: a function_call_output reaches the model', back.output_text.includes('sunny, 31C'),
        back.output_text);
  // a fallback from an OpenAI-kind model (down) to an Anthropic-kind one
  const fb = await client.responses.create({ model: 'gpt-down', input: 'weather in Rome?', tool_choice: 'required',
    tools: wtools }).withResponse();
  check('responses fallback gpt-down -> claude: a function_call', fb.data.output.some((o) => o.type === 'function_call')
        && fb.response.headers.get('x-quotatop-model-used') === 'claude', JSON.stringify(fb.data.output));

  // ---- what cannot cross: a 400 naming the field, not a retry
  for (const [label, req, field] of [
    ['previous_response_id', { previous_response_id: r.id }, 'previous_response_id'],
    ['a built-in tool', { tools: [{ type: 'web_search_preview' }] }, 'web_search_preview']]) {
    try {
      await client.responses.create({ model: 'claude', input: 'hi', ...req });
      fail(`responses with ${label} to an anthropic-only chain: 400`, 'no exception');
    } catch (e) {
      check(`responses with ${label} to an anthropic-only chain: 400 naming it`,
            e instanceof OpenAI.BadRequestError && e.message.includes(field), `${e?.constructor?.name} ${e?.message}`);
    }
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
