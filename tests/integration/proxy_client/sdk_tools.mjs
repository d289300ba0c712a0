// sdk_tools.mjs: agents' traffic through `quotatop serve` with the official
// openai SDK: tool calls plain and streamed (arguments reassembled from the
// deltas), tool_choice, n: 2, a round trip sending the tool result back, all
// on an OpenAI-kind model, on an Anthropic-kind one (translated both ways),
// and across fallbacks between the two kinds; and the 400 for a request no
// model of the chain can carry. The mock calls the named (else the first)
// tool with arguments made from its schema: {"city":"mock-city","days":42}.
// Prints PASS/FAIL lines. Env: QT_BASE_URL, QT_TOKEN.
import OpenAI from 'openai';
import { reporter } from './report.mjs';

const client = new OpenAI({ baseURL: process.env.QT_BASE_URL, apiKey: process.env.QT_TOKEN,
                            maxRetries: 0, timeout: 20000 });
const { pass, fail, check } = reporter('tools', 400);

const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } },
                  required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object',
    properties: { zone: { type: 'string' } } } } },
];
const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];
const argsOk = (s) => { try { const a = JSON.parse(s); return a.city === 'mock-city' && a.days === 42; }
                        catch { return false; } };

async function plain(label, model, usedWant) {
  const { data: c, response } = await client.chat.completions
    .create({ model, messages: ask, tools, max_tokens: 50 }).withResponse();
  const ch = c.choices?.[0], tc = ch?.message?.tool_calls?.[0];
  check(`${label}: finish_reason tool_calls`, ch?.finish_reason === 'tool_calls', JSON.stringify(c));
  check(`${label}: the call names the tool`, tc?.function?.name === 'get_weather' && tc?.type === 'function',
        JSON.stringify(tc));
  check(`${label}: arguments intact`, argsOk(tc?.function?.arguments), tc?.function?.arguments);
  check(`${label}: the call has an id`, typeof tc?.id === 'string' && tc.id.length > 0, tc?.id);
  check(`${label}: answered by ${usedWant}`, response.headers.get('x-quotatop-model-used') === usedWant,
        response.headers.get('x-quotatop-model-used'));
  check(`${label}: model names the model that answered`, c.model === usedWant, c.model);
  return { c, tc };
}

async function streamed(label, model, usedWant) {
  const s = await client.chat.completions.create({ model, messages: ask, tools, max_tokens: 50, stream: true,
                                                   stream_options: { include_usage: true } });
  const calls = [];
  let finish = null, usage = null, models = new Set(), deltas = 0;
  for await (const chunk of s) {
    models.add(chunk.model);
    if (chunk.usage) usage = chunk.usage;
    for (const ch of chunk.choices) {
      if (ch.finish_reason) finish = ch.finish_reason;
      for (const d of ch.delta?.tool_calls ?? []) {
        deltas++;
        const t = (calls[d.index] ??= { id: '', name: '', args: '' });
        if (d.id) t.id = d.id;
        if (d.function?.name) t.name += d.function.name;
        if (d.function?.arguments) t.args += d.function.arguments;
      }
    }
  }
  check(`${label} streamed: finish_reason tool_calls`, finish === 'tool_calls', finish);
  check(`${label} streamed: arguments came in several deltas`, deltas >= 3, deltas);
  check(`${label} streamed: one call, named, with an id`, calls.length === 1 && calls[0].name === 'get_weather'
        && calls[0].id.length > 0, JSON.stringify(calls));
  check(`${label} streamed: arguments reassembled intact`, argsOk(calls[0]?.args), calls[0]?.args);
  check(`${label} streamed: usage at the end`, usage?.prompt_tokens > 0 && usage?.completion_tokens > 0,
        JSON.stringify(usage));
  check(`${label} streamed: chunks name ${usedWant}`, models.size === 1 && models.has(usedWant), [...models]);
}

async function roundTrip(label, model) {
  const first = await client.chat.completions.create({ model, messages: ask, tools, max_tokens: 50 });
  const msg = first.choices[0].message;
  const messages = [...ask, msg, { role: 'tool', tool_call_id: msg.tool_calls[0].id, content: 'sunny, 21 C' }];
  const c = await client.chat.completions.create({ model, messages, tools, max_tokens: 50 });
  const text = c.choices?.[0]?.message?.content ?? '';
  check(`${label} round trip: the tool result reached the model`, text.includes('sunny, 21 C'), text);
  check(`${label} round trip: finish_reason stop`, c.choices?.[0]?.finish_reason === 'stop',
        c.choices?.[0]?.finish_reason);
}

async function choices(label, model) {
  const none = await client.chat.completions.create({ model, messages: ask, tools, tool_choice: 'none',
                                                      max_tokens: 20 });
  check(`${label}: tool_choice none answers text`, !none.choices[0].message.tool_calls
        && typeof none.choices[0].message.content === 'string', JSON.stringify(none.choices[0]));
  const named = await client.chat.completions.create({ model, messages: ask, tools, max_tokens: 50,
    tool_choice: { type: 'function', function: { name: 'get_time' } } });
  check(`${label}: a named tool_choice is honoured`,
        named.choices[0].message.tool_calls?.[0]?.function?.name === 'get_time',
        JSON.stringify(named.choices[0].message));
}

async function expect400(label, body) {
  try {
    await client.chat.completions.create(body);
    fail(label, 'no exception');
  } catch (e) {
    check(`${label}: BadRequestError (400, not retried)`, e instanceof OpenAI.BadRequestError, `${e?.status} ${e?.message}`);
    return e;
  }
}

async function main() {
  // OpenAI-kind: passed through as the upstream sent them
  const { c } = await plain('openai-kind', 'gpt-4o', 'gpt-4o');
  check('openai-kind: system_fingerprint kept', c.system_fingerprint === 'fp_mock', c.system_fingerprint);
  check('openai-kind: usage details kept', c.usage?.prompt_tokens_details?.cached_tokens === 0,
        JSON.stringify(c.usage));
  await streamed('openai-kind', 'gpt-4o', 'gpt-4o');
  await roundTrip('openai-kind', 'gpt-4o');
  await choices('openai-kind', 'gpt-4o');
  const two = await client.chat.completions.create({ model: 'gpt-4o', messages: ask, n: 2, max_tokens: 10 });
  check('n: 2 gives two choices', two.choices.length === 2 && two.choices[1].index === 1
        && two.choices.every((ch) => typeof ch.message.content === 'string'), JSON.stringify(two.choices));

  // Anthropic-kind: translated both ways
  await plain('anthropic-kind', 'claude', 'claude');
  await streamed('anthropic-kind', 'claude', 'claude');
  await roundTrip('anthropic-kind', 'claude');
  await choices('anthropic-kind', 'claude');

  // Fallbacks across kinds, tools included
  await plain('fallback openai->anthropic', 'primary', 'claude');
  await streamed('fallback openai->anthropic', 'primary', 'claude');
  await plain('fallback anthropic->openai', 'claude-first', 'gpt-4o');
  await streamed('fallback anthropic->openai', 'claude-first', 'gpt-4o');
  const skip = await client.chat.completions.create({ model: 'claude-first', messages: ask, n: 2, max_tokens: 10 })
    .withResponse();
  check('n: 2 skips the anthropic model and the openai one answers both choices',
        skip.data.choices.length === 2 && skip.response.headers.get('x-quotatop-model-used') === 'gpt-4o',
        JSON.stringify(skip.data.choices.length));

  // Nothing in the chain can carry it: a 400 naming the field
  let e = await expect400('n: 2 to an anthropic-only chain', { model: 'claude', messages: ask, n: 2 });
  check('n: 2 to an anthropic-only chain: the message names "n"', /"n": 2/.test(e?.message ?? ''), e?.message);
  check('n: 2 to an anthropic-only chain: code unsupported_by_chain', e?.code === 'unsupported_by_chain', e?.code);
  e = await expect400('n: 2 streamed to an anthropic-only chain', { model: 'claude', messages: ask, n: 2,
                                                                      stream: true });
  e = await expect400('logprobs to an anthropic-only chain', { model: 'claude', messages: ask, logprobs: true });
  check('logprobs: the message names "logprobs"', /logprobs/.test(e?.message ?? ''), e?.message);
  e = await expect400('json_schema to an anthropic-only chain', { model: 'claude', messages: ask,
    response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } } });
  check('json_schema: the message names "response_format"', /response_format/.test(e?.message ?? ''), e?.message);
}

main().catch((e) => fail('script', e?.stack ?? e));
