// sdk_anthropic.mjs: the official @anthropic-ai/sdk against `quotatop serve`
// (POST /v1/messages): plain and streamed messages on an anthropic-kind model
// (carried as is) and an openai-kind one (translated), tools and a tool-result
// round trip on both, the token as x-api-key and as a bearer, errors as the
// SDK's exception types, models.list, and QT_CLIENTS concurrent clients on
// QT_PACED. Prints PASS/FAIL lines. Env: QT_ROOT_URL (no /v1), QT_TOKEN.
import Anthropic from '@anthropic-ai/sdk';
import { reporter } from './report.mjs';

const baseURL = process.env.QT_ROOT_URL;
const apiKey = process.env.QT_TOKEN;
const { pass, fail, check, expectThrow } = reporter('anthropic sdk');
const user = (text) => [{ role: 'user', content: text }];
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const weather = {
  name: 'get_weather', description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const textOf = (m) => m.content.filter((b) => b.type === 'text').map((b) => b.text).join('');


async function kind(model) {
  // ---- plain
  const m = await client.messages.create({ model, max_tokens: 64, messages: user(`hello ${model}`) });
  check(`${model} plain: a message`, m.type === 'message' && m.role === 'assistant', JSON.stringify(m));
  check(`${model} plain: text`, textOf(m).includes('simulated'), JSON.stringify(m.content));
  check(`${model} plain: stop_reason`, m.stop_reason === 'end_turn' || m.stop_reason === 'max_tokens', m.stop_reason);
  check(`${model} plain: usage`, m.usage.output_tokens > 0, JSON.stringify(m.usage));
  check(`${model} plain: model names who answered`, m.model === model, m.model);

  // ---- streamed: the same deterministic text, every event type in order
  const stream = client.messages.stream({ model, max_tokens: 64, messages: user(`hello ${model}`) });
  const types = [];
  for await (const ev of stream) types.push(ev.type);
  const fin = await stream.finalMessage();
  check(`${model} stream: text equals the plain answer`, textOf(fin) === textOf(m), `${textOf(fin)} vs ${textOf(m)}`);
  check(`${model} stream: message_start first`, types[0] === 'message_start', types.join(','));
  check(`${model} stream: message_stop last`, types[types.length - 1] === 'message_stop', types.join(','));
  for (const t of ['content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta'])
    check(`${model} stream: ${t}`, types.includes(t), types.join(','));
  check(`${model} stream: usage`, fin.usage.output_tokens > 0, JSON.stringify(fin.usage));

  // ---- tools: a forced call, plain and streamed, the input intact
  const t = await client.messages.create({
    model, max_tokens: 128, messages: user('weather in Paris?'), tools: [weather],
    tool_choice: { type: 'tool', name: 'get_weather' } });
  const use = t.content.find((b) => b.type === 'tool_use');
  check(`${model} tools: a tool_use block`, use && use.name === 'get_weather', JSON.stringify(t.content));
  check(`${model} tools: input is an object with the city`, use && typeof use.input?.city === 'string',
        JSON.stringify(use));
  check(`${model} tools: stop_reason tool_use`, t.stop_reason === 'tool_use', t.stop_reason);
  const ts = client.messages.stream({
    model, max_tokens: 128, messages: user('weather in Paris?'), tools: [weather],
    tool_choice: { type: 'tool', name: 'get_weather' } });
  let partial = '';
  ts.on('inputJson', (d) => { partial += d; });
  const tf = await ts.finalMessage();
  const suse = tf.content.find((b) => b.type === 'tool_use');
  check(`${model} tools stream: input reassembled`, suse && JSON.stringify(suse.input) === JSON.stringify(use?.input),
        `${JSON.stringify(suse)} vs ${JSON.stringify(use)}`);
  check(`${model} tools stream: input_json deltas`, partial.length > 0 && JSON.parse(partial).city, partial);

  // ---- a tool result back: the ids kept, the answer quotes it
  const r = await client.messages.create({
    model, max_tokens: 128, tools: [weather],
    messages: [...user('weather in Paris?'), { role: 'assistant', content: [use] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 21C' }] }] });
  check(`${model} tool result: answered with text`, textOf(r).includes('sunny'), JSON.stringify(r.content));
}

async function main() {
  await kind('claude');
  await kind('gpt-4o');

  // ---- the token as a bearer (authToken) works too
  const bearer = new Anthropic({ baseURL, authToken: apiKey, apiKey: null, maxRetries: 0 });
  const b = await bearer.messages.create({ model: 'claude', max_tokens: 16, messages: user('hi') });
  check('token as a bearer', b.type === 'message', JSON.stringify(b));

  // ---- errors in Anthropic's shape, as the SDK's types
  await expectThrow('unknown model: NotFoundError', Anthropic.NotFoundError,
    () => client.messages.create({ model: 'no-such-model', max_tokens: 16, messages: user('hi') }),
    (e) => check('unknown model: error type', e.error?.error?.type === 'not_found_error', JSON.stringify(e.error)));
  const wrong = new Anthropic({ baseURL, apiKey: 'wrong', maxRetries: 0 });
  await expectThrow('wrong token: AuthenticationError', Anthropic.AuthenticationError,
    () => wrong.messages.create({ model: 'claude', max_tokens: 16, messages: user('hi') }));
  await expectThrow('bad request: BadRequestError', Anthropic.BadRequestError,
    () => client.messages.create({ model: 'claude', max_tokens: 16, messages: 'not a list' }));
  let calls = 0;
  const counting = new Anthropic({ baseURL, apiKey, maxRetries: 2,
    fetch: (u, i) => { calls++; return fetch(u, i); } });
  await expectThrow('budget exhausted: an APIError', Anthropic.APIError,
    () => counting.messages.create({ model: 'claude', max_tokens: 16, messages: user('hi') },
                                   { headers: { 'X-Quotatop-Workflow': 'capped' } }),
    (e) => {
      check('budget exhausted: 402 billing_error', e.status === 402 && e.error?.error?.type === 'billing_error',
            `${e.status} ${JSON.stringify(e.error)}`);
      check('budget exhausted: not retried', calls === 1, calls);
    });

  // ---- models in the SDK's shape
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  check('models.list', ids.includes('claude') && ids.includes('gpt-4o'), ids.join(','));

  // ---- concurrent clients paced under a limit
  const n = Number(process.env.QT_CLIENTS || 30), model = process.env.QT_PACED || 'paced';
  const t0 = Date.now();
  const all = await Promise.allSettled(Array.from({ length: n }, (_, i) => client.messages.create({
    model, max_tokens: 16, messages: user(`client ${i}`) })));
  const ok = all.filter((x) => x.status === 'fulfilled').length;
  check(`${n} concurrent clients all answered`, ok === n,
        all.filter((x) => x.status === 'rejected').map((x) => x.reason?.message).slice(0, 2).join(' | '));
  console.log(`INFO anthropic sdk: ${n} concurrent in ${Date.now() - t0} ms`);
}

main().catch((e) => { fail('script', e?.stack || e); });
