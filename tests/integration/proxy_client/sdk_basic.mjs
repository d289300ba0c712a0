// sdk_basic.mjs: the official openai SDK against `quotatop serve`: plain and
// streamed completions, quotatop's headers, fallback to an Anthropic model,
// and errors surfacing as the SDK's own exception types. Prints PASS/FAIL
// lines for tests/integration/run.sh. Env: QT_BASE_URL, QT_TOKEN.
import OpenAI from 'openai';
import { reporter } from './report.mjs';

const baseURL = process.env.QT_BASE_URL;
const apiKey = process.env.QT_TOKEN;
const { pass, fail, check, expectThrow } = reporter('sdk');
const user = (text) => [{ role: 'user', content: text }];


let calls = 0;   // HTTP requests the SDK made (to see whether it retried)
const countingFetch = (url, init) => { calls++; return fetch(url, init); };
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const retrying = new OpenAI({ baseURL, apiKey, maxRetries: 2, timeout: 20000, fetch: countingFetch });

async function main() {
  // ---- plain
  const { data: c, response } = await client.chat.completions
    .create({ model: 'gpt-4o', messages: user('hello from the sdk'), max_tokens: 20 })
    .withResponse();
  const content = c.choices?.[0]?.message?.content;
  check('plain: content', typeof content === 'string' && content.includes('simulated'), JSON.stringify(c));
  check('plain: usage', c.usage?.total_tokens > 0, JSON.stringify(c.usage));
  check('plain: X-Quotatop-Model-Used', response.headers.get('x-quotatop-model-used') === 'gpt-4o',
        response.headers.get('x-quotatop-model-used'));
  check('plain: X-Quotatop-Attempts', response.headers.get('x-quotatop-attempts') === '1',
        response.headers.get('x-quotatop-attempts'));
  check('plain: X-Quotatop-Queued-Ms', /^\d+$/.test(response.headers.get('x-quotatop-queued-ms') ?? ''),
        response.headers.get('x-quotatop-queued-ms'));

  // ---- streaming
  const stream = await client.chat.completions.create({
    model: 'gpt-4o', messages: user('hello from the sdk'), max_tokens: 20, stream: true });
  let text = '', n = 0, finish = null, usage = 0;
  for await (const chunk of stream) {
    n++;
    if (chunk.usage) usage++;
    for (const ch of chunk.choices) {
      text += ch.delta?.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  check('stream: several chunks', n >= 3, n);
  check('stream: text equals the plain answer', text === content, `${text} vs ${content}`);
  check('stream: finish_reason', finish === 'stop' || finish === 'length', finish);
  check('stream: no usage chunk unless asked', usage === 0, usage);

  const s2 = await client.chat.completions.create({
    model: 'gpt-4o', messages: user('hello from the sdk'), max_tokens: 20, stream: true,
    stream_options: { include_usage: true } });
  let u = null;
  for await (const chunk of s2) if (chunk.usage) u = chunk.usage;
  check('stream: include_usage gives the usage chunk', u && u.total_tokens > 0, JSON.stringify(u));

  const s3 = await client.chat.completions.create({
    model: 'claude', messages: user('hello from the sdk'), max_tokens: 20, stream: true });
  let t3 = '';
  for await (const chunk of s3) for (const ch of chunk.choices) t3 += ch.delta?.content ?? '';
  check('stream: Anthropic upstream read by the SDK', t3.includes('simulated'), t3);

  const { data: fb, response: fr } = await client.chat.completions
    .create({ model: 'primary', messages: user('fall back please'), max_tokens: 20 }).withResponse();
  check('fallback: answered by the Anthropic model', fr.headers.get('x-quotatop-model-used') === 'claude',
        fr.headers.get('x-quotatop-model-used'));
  check('fallback: OpenAI shape', fb.object === 'chat.completion' && !!fb.choices[0].message.content,
        JSON.stringify(fb));

  // ---- errors as the SDK's own types
  const bad = new OpenAI({ baseURL, apiKey: apiKey + 'x', maxRetries: 0 });
  await expectThrow('401: AuthenticationError', OpenAI.AuthenticationError,
    () => bad.chat.completions.create({ model: 'gpt-4o', messages: user('hi') }));
  await expectThrow('unknown model: NotFoundError', OpenAI.NotFoundError,
    () => client.chat.completions.create({ model: 'no-such-model', messages: user('hi') }),
    (e) => check('unknown model: code model_not_found', e.code === 'model_not_found', e.code));
  await expectThrow('empty messages: BadRequestError', OpenAI.BadRequestError,
    () => client.chat.completions.create({ model: 'gpt-4o', messages: [] }));
  await expectThrow('upstream failure: InternalServerError', OpenAI.InternalServerError,
    () => client.chat.completions.create({ model: 'broken', messages: user('hi') }),
    (e) => check('upstream failure: status 502', e.status === 502, e.status));
  await expectThrow('stream failing before the first byte: APIError', OpenAI.APIError,
    () => client.chat.completions.create({ model: 'broken', messages: user('hi'), stream: true }),
    (e) => check('stream failing before the first byte: status 502', e.status === 502, e.status));

  await client.chat.completions.create({ model: 'slow', messages: user('hi'), max_tokens: 5 });
  await expectThrow('backpressure 429: RateLimitError', OpenAI.RateLimitError,
    () => client.chat.completions.create({ model: 'slow', messages: user('hi'), max_tokens: 5 }),
    (e) => check('backpressure 429: retry-after given', Number(e.headers?.get('retry-after')) >= 1,
                 e.headers?.get('retry-after')));

  calls = 0;
  await expectThrow('budget exhausted: APIError', OpenAI.APIError,
    () => retrying.chat.completions.create({ model: 'gpt-4o', messages: user('hi') },
                                            { headers: { 'X-Quotatop-Workflow': 'capped' } }),
    (e) => {
      check('budget exhausted: not a RateLimitError', !(e instanceof OpenAI.RateLimitError), e.constructor.name);
      check('budget exhausted: status 402', e.status === 402, e.status);
      check('budget exhausted: code budget_exhausted', e.code === 'budget_exhausted', e.code);
      check('budget exhausted: the SDK did not retry', calls === 1, `${calls} requests`);
    });
}

main().catch((e) => fail('unexpected exception', `${e?.constructor?.name}: ${e?.message}`));
