// sdk_cache.mjs: `@cache` answers replay the original whole. A chain
// [claude-c, @cache] answers tool requests (chat plain and streamed,
// responses plain and streamed, messages) once; then the mock's claude-c goes down
// (its /control/outage) and the same requests are answered from the cache,
// flagged x-quotatop-cached, with the same tool calls and finish reason.
// Prints PASS/FAIL lines. Env: QT_BASE_URL, QT_TOKEN, QT_MOCK_URL.
import OpenAI from 'openai';
import { reporter } from './report.mjs';

const client = new OpenAI({ baseURL: process.env.QT_BASE_URL, apiKey: process.env.QT_TOKEN,
                            maxRetries: 0, timeout: 20000 });
const { fail, check } = reporter('cache', 400);
const model = 'claude-cache';
const tools = [{ type: 'function', function: { name: 'get_weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const rtools = [{ type: 'function', name: 'get_weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
const chat = { model, messages: [{ role: 'user', content: 'weather in Lima?' }], tools, tool_choice: 'required' };
const resp = { model, input: 'weather in Quito?', tools: rtools, tool_choice: 'required' };

async function outage(ms) {
  const r = await fetch(`${process.env.QT_MOCK_URL}/control/outage`, { method: 'POST',
    headers: { authorization: `Bearer ${process.env.QT_UP_KEY}` },
    body: JSON.stringify({ model: 'claude-c', start_ms: 0, duration_ms: ms }) });
  if (!r.ok) throw new Error(`outage: ${r.status}`);
}

async function streamChat() {
  const s = await client.chat.completions.create({ ...chat, stream: true });
  let name = '', args = '', finish = null, id = null;
  for await (const ch of s) {
    const d = ch.choices[0];
    for (const tc of d?.delta?.tool_calls ?? []) {
      id = tc.id ?? id;
      name += tc.function?.name ?? '';
      args += tc.function?.arguments ?? '';
    }
    finish = d?.finish_reason ?? finish;
  }
  return { id, name, args, finish };
}

// /v1/messages with tools, through fetch (Anthropic's shapes).
const msgReq = { model, max_tokens: 50, messages: [{ role: 'user', content: 'weather in Bern?' }],
  tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
  tool_choice: { type: 'any' } };
async function messages() {
  const r = await fetch(`${process.env.QT_BASE_URL}/messages`, { method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': process.env.QT_TOKEN ?? '',
               'anthropic-version': '2023-06-01' }, body: JSON.stringify(msgReq) });
  return { cached: r.headers.get('x-quotatop-cached'), body: await r.json() };
}

async function main() {
  const firstMsg = await messages();
  const first = await client.chat.completions.create(chat).withResponse();
  const firstStream = await streamChat();
  const firstResp = await client.responses.create(resp);
  const firstRespStream = await client.responses.stream(resp).finalResponse();
  check('the first answers are live', first.response.headers.get('x-quotatop-cached') === null
        && first.data.choices[0].finish_reason === 'tool_calls', JSON.stringify(first.data));
  await outage(60000);
  try {
    const again = await client.chat.completions.create(chat).withResponse();
    const c0 = again.data.choices[0], o0 = first.data.choices[0];
    check('chat from @cache: flagged', again.response.headers.get('x-quotatop-cached') === 'true',
          JSON.stringify([...again.response.headers]));
    check('chat from @cache: finish_reason tool_calls', c0.finish_reason === 'tool_calls', JSON.stringify(c0));
    check('chat from @cache: the same tool call', JSON.stringify(c0.message.tool_calls)
          === JSON.stringify(o0.message.tool_calls), `${JSON.stringify(c0.message)} vs ${JSON.stringify(o0.message)}`);
    const s = await streamChat();
    check('chat stream from @cache: the same tool call', s.name === 'get_weather' && s.args === firstStream.args
          && s.id === firstStream.id, `${JSON.stringify(s)} vs ${JSON.stringify(firstStream)}`);
    check('chat stream from @cache: finish_reason tool_calls', s.finish === 'tool_calls', s.finish);
    const r2 = await client.responses.create(resp).withResponse();
    const call = r2.data.output.find((o) => o.type === 'function_call');
    const call0 = firstResp.output.find((o) => o.type === 'function_call');
    check('responses from @cache: a response object, flagged', r2.data.object === 'response'
          && r2.response.headers.get('x-quotatop-cached') === 'true', JSON.stringify(r2.data).slice(0, 300));
    check('responses from @cache: the same function call', call?.call_id === call0?.call_id
          && call?.arguments === call0?.arguments && call?.name === 'get_weather', JSON.stringify(r2.data.output));
    const m2 = await messages();
    const use = m2.body.content?.find((b) => b.type === 'tool_use');
    const use0 = firstMsg.body.content?.find((b) => b.type === 'tool_use');
    check('messages from @cache: the same tool_use block', m2.cached === 'true' && use0 && use?.id === use0.id
          && JSON.stringify(use.input) === JSON.stringify(use0.input) && m2.body.stop_reason === 'tool_use',
          `${JSON.stringify(m2)} vs ${JSON.stringify(firstMsg.body)}`);
    const rs = await client.responses.stream(resp).finalResponse();
    const scall = rs.output.find((o) => o.type === 'function_call');
    const scall0 = firstRespStream.output.find((o) => o.type === 'function_call');
    check('responses stream from @cache: the same function call', scall?.arguments === scall0?.arguments
          && scall?.call_id === scall0?.call_id, JSON.stringify(rs.output));
  } finally {
    await outage(0);
  }
}

main().catch((e) => { fail('script', e?.stack || e); });
