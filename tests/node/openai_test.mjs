// openai_test.mjs - the official `openai` npm client against `ember serve`
// (BASE: the server's base URL): a model listing, a chat, a streamed chat.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.BASE + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 20000 });
let passed = 0, failed = 0;
async function test(name, fn) {
  try { await fn(); passed++; console.log(`ok - ${name}`); }
  catch (e) { failed++; console.log(`not ok - ${name}: ${e && e.stack ? e.stack : e}`); }
}
function assert(c, m) { if (!c) throw new Error(m || 'assertion failed'); }

let model;
await test('models.list', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert(ids.length === 1 && ids[0] === 'stories260K', `ids ${JSON.stringify(ids)}`);
  model = ids[0];
  const one = await client.models.retrieve(model);
  assert(one.id === model, 'retrieve');
});

const messages = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Tell me about a cat.' }];
let full;
await test('chat.completions.create', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0, seed: 1 });
  assert(r.object === 'chat.completion' && r.choices.length === 1, 'shape');
  assert(r.choices[0].message.role === 'assistant' && r.choices[0].message.content.length > 0, 'message');
  assert(['stop', 'length'].includes(r.choices[0].finish_reason), 'finish_reason');
  assert(r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, 'usage');
  full = r;
});

await test('chat.completions.create (stream)', async () => {
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0, seed: 1,
                                                        stream: true, stream_options: { include_usage: true } });
  let text = '', usage = null, finish = null, n = 0;
  for await (const chunk of stream) {
    n++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert(n > 2, 'several chunks');
  assert(text === full.choices[0].message.content, `streamed text ${JSON.stringify(text)}`);
  assert(finish === full.choices[0].finish_reason, 'finish_reason');
  assert(JSON.stringify(usage) === JSON.stringify(full.usage), 'usage');
});

await test('errors surface as APIError with the status', async () => {
  try {
    await client.chat.completions.create({ model: 'nope', messages });
    throw new Error('no error');
  } catch (e) {
    assert(e instanceof OpenAI.APIError && e.status === 404, `got ${e}`);
  }
});

console.log(`openai client: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
