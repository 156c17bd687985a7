// api_test.mjs - end-to-end checks of `ember serve` over HTTP (run by
// tests/cli_server.sh, which starts the servers). Uses only Node's built-ins.
//
// Environment: EMBER (the binary), MAIN, LONG, SMALL, PRE (base URLs):
//   MAIN  default settings (4 slots, context 512, --max-body 65536)
//   LONG  --slots 1 --max-queue 1 --ctx 4096 (long generations: disconnects, queue full)
//   SMALL --ctx 4096 --timeout 1 (per-request time limit)
//   PRE   --slots 4 --ctx 256 --kv-pool 256 (KV pool too small for 4 sequences: preemption)
//   CT    --slots 8 --ctx 1280 (contemplating mode: 8 branches, a 1,000-token prompt)
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import net from 'node:net';

const EMBER = process.env.EMBER || 'build/ember';
const MAIN = process.env.MAIN, LONG = process.env.LONG, SMALL = process.env.SMALL, PRE = process.env.PRE;
const CT = process.env.CT;
const MODEL = 'stories260K';

let passed = 0, failed = 0;
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg || 'assertion failed'); }
function eq(a, b, msg) {
  const sa = JSON.stringify(a), sb = JSON.stringify(b);
  if (sa !== sb) throw new Error(`${msg || 'not equal'}:\n  got      ${sa}\n  expected ${sb}`);
}
const sleep = ms => new Promise(r => setTimeout(r, ms));

async function post(base, path, body, opts = {}) {
  const r = await fetch(base + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(opts.headers || {}) },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
    signal: opts.signal,
  });
  const buf = new Uint8Array(await r.arrayBuffer());
  const text = new TextDecoder('utf-8', { fatal: true }).decode(buf); // throws on invalid UTF-8
  let json = null;
  try { json = JSON.parse(text); } catch { /* SSE or not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}
const cmpl = (base, body, opts) => post(base, '/v1/completions', body, opts);
const chat = (base, body, opts) => post(base, '/v1/chat/completions', body, opts);

function sseEvents(text) {
  const ev = [];
  for (const block of text.split('\n\n')) {
    const line = block.split('\n').find(l => l.startsWith('data: '));
    if (!line) continue;
    const d = line.slice(6);
    ev.push(d === '[DONE]' ? '[DONE]' : JSON.parse(d));
  }
  return ev;
}

function expectError(res, status, param, code) {
  eq(res.status, status, `status (body ${res.text})`);
  assert(res.json && res.json.error, `error body: ${res.text}`);
  const e = res.json.error;
  for (const k of ['message', 'type', 'param', 'code']) assert(k in e, `error.${k} missing in ${res.text}`);
  assert(typeof e.message === 'string' && e.message.length > 0, 'error.message');
  if (param !== undefined) eq(e.param, param, 'error.param');
  if (code !== undefined) eq(e.code, code, 'error.code');
  return e;
}

// `ember run` greedy (or seeded) output without the echoed prompt (memoized)
const runCache = new Map();
const execFileP = promisify(execFile);
function emberRun(prompt, n, extra = ['--greedy']) {
  const key = JSON.stringify([prompt, n, extra]);
  if (!runCache.has(key)) {
    runCache.set(key, execFileP(EMBER, ['run', '-p', prompt, '-n', String(n), '--quiet', ...extra], { encoding: 'utf8' })
      .then(({ stdout }) => {
        assert(stdout.startsWith(prompt) && stdout.endsWith('\n'), 'ember run output shape');
        return stdout.slice(prompt.length, -1);
      }));
  }
  return runCache.get(key);
}
function tokenIds(prompt) {
  const out = execFileSync(EMBER, ['tokenize', '-p', prompt], { encoding: 'utf8' }); // "[1, 320, ...]"
  return (out.match(/\d+/g) || []).map(Number);
}
const nTokens = prompt => tokenIds(prompt).length;

async function metrics(base) {
  const r = await fetch(base + '/metrics');
  const text = await r.text();
  const m = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return m;
}
async function waitFor(fn, ms, what) {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Ben', 'One day, a big', 'The sun was',
                 'Tom had a red', 'In the park,', 'A small bird'];

// ------------------------------------------------------------------ basics
await test('GET /health', async () => {
  const r = await fetch(MAIN + '/health');
  eq(r.status, 200);
  eq(await r.json(), { status: 'ok' });
});

await test('GET / serves the self-contained chat page', async () => {
  const r = await fetch(MAIN + '/');
  eq(r.status, 200);
  assert(r.headers.get('content-type').startsWith('text/html'), 'content type');
  const html = await r.text();
  assert(html.includes('<title>ember chat</title>') && html.includes('/v1/chat/completions'), 'page content');
  assert(!/(src|href)\s*=\s*["']?(https?:)?\/\//i.test(html), 'no external resources');
  assert(html.includes('tok/s') && html.includes('stream:true'), 'streams and shows tok/s');
  assert(html.includes('id="ct"') && html.includes('contemplate') && html.includes('synthesize'), 'contemplation toggle');
});

await test('GET /v1/models and /v1/models/{id}', async () => {
  let r = await fetch(MAIN + '/v1/models');
  eq(r.status, 200);
  const j = await r.json();
  eq(j.object, 'list');
  eq(j.data.length, 1);
  eq(j.data[0].id, MODEL);
  eq(j.data[0].object, 'model');
  assert(typeof j.data[0].created === 'number' && typeof j.data[0].owned_by === 'string', 'model fields');
  r = await fetch(MAIN + '/v1/models/' + MODEL);
  eq(r.status, 200);
  eq((await r.json()).id, MODEL);
  r = await fetch(MAIN + '/v1/models/nope');
  const res = { status: r.status, json: await r.json() };
  res.text = JSON.stringify(res.json);
  expectError(res, 404, 'model', 'model_not_found');
});

await test('GET /metrics exposes the Prometheus metrics', async () => {
  const r = await fetch(MAIN + '/metrics');
  eq(r.status, 200);
  assert(r.headers.get('content-type').startsWith('text/plain'), 'content type');
  const t = await r.text();
  for (const name of ['ember_http_requests_total{code="200"}', 'ember_prompt_tokens_total', 'ember_generation_tokens_total',
                      'ember_queue_depth', 'ember_slots_active', 'ember_slots_total', 'ember_kv_blocks_used',
                      'ember_kv_blocks_free', 'ember_time_to_first_token_seconds_bucket{le="+Inf"}',
                      'ember_inter_token_latency_seconds_bucket', 'ember_inter_token_latency_seconds_count',
                      'ember_preemptions_total', 'ember_sequences_finished_total{reason="cancelled"}'])
    assert(t.includes(name), `metric ${name} missing`);
  assert(/# TYPE ember_time_to_first_token_seconds histogram/.test(t), 'histogram type');
});

// ------------------------------------------------- completions vs ember run
const N = 40;
const solo = {};
await test('completions: greedy text, usage and finish match `ember run`', async () => {
  for (const p of PROMPTS.slice(0, 3)) {
    const r = await cmpl(MAIN, { model: MODEL, prompt: p, max_tokens: N, temperature: 0 });
    eq(r.status, 200, r.text);
    const j = r.json;
    eq(j.object, 'text_completion');
    assert(j.id.startsWith('cmpl-') && j.model === MODEL && typeof j.created === 'number', 'envelope');
    eq(j.choices.length, 1);
    eq(j.choices[0].index, 0);
    eq(j.choices[0].text, await emberRun(p, N), `text for "${p}"`);
    eq(j.choices[0].finish_reason, 'length');
    eq(j.choices[0].logprobs, null);
    eq(j.usage, { prompt_tokens: nTokens(p), completion_tokens: N, total_tokens: nTokens(p) + N });
    solo[p] = j.choices[0].text;
  }
});

await test('completions: seeded sampling matches `ember run --seed`, choice i uses seed + i', async () => {
  const p = 'Once upon a time';
  const r = await cmpl(MAIN, { prompt: p, max_tokens: 30, temperature: 1, seed: 1234, n: 2 });
  eq(r.status, 200, r.text);
  eq(r.json.choices[0].text, await emberRun(p, 30, ['--temp', '1', '--seed', '1234']), 'choice 0');
  eq(r.json.choices[1].text, await emberRun(p, 30, ['--temp', '1', '--seed', '1235']), 'choice 1');
  const r2 = await cmpl(MAIN, { prompt: p, max_tokens: 30, temperature: 1, seed: 1234, top_k: 5, top_p: 0.9,
                                min_p: 0.1, frequency_penalty: 0.5, presence_penalty: 0.3 });
  eq(r2.status, 200, r2.text);
  eq(r2.json.choices[0].text, await emberRun(p, 30, ['--temp', '1', '--seed', '1234', '--top-k', '5', '--top-p', '0.9',
                                               '--min-p', '0.1', '--frequency-penalty', '0.5',
                                               '--presence-penalty', '0.3', '--repeat-last-n', '-1']),
     'sampling parameters');
});

await test('completions: a long prompt (chunked prefill) matches `ember run`', async () => {
  const p = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. '.repeat(10);
  const n = nTokens(p);
  assert(n > 256, `prompt of ${n} tokens spans several prefill chunks`);
  const r = await cmpl(MAIN, { prompt: p, max_tokens: 20, temperature: 0 });
  eq(r.status, 200, r.text);
  eq(r.json.choices[0].text, await emberRun(p, 20));
  eq(r.json.usage.prompt_tokens, n);
  // the same prompt again comes from the prefix cache and gives the same text
  const before = (await metrics(MAIN))['ember_prompt_tokens_cached_total'];
  const r2 = await cmpl(MAIN, { prompt: p, max_tokens: 20, temperature: 0 });
  eq(r2.json.choices[0].text, r.json.choices[0].text, 'cached prompt');
  const after = (await metrics(MAIN))['ember_prompt_tokens_cached_total'];
  assert(after - before >= n - 1, `prefix cache reused ${after - before} of ${n} tokens`);
});

await test('completions: token-id prompts and prompt arrays', async () => {
  const p = 'The little dog';
  const ids = tokenIds(p);
  const r = await cmpl(MAIN, { prompt: ids, max_tokens: 10, temperature: 0 });
  eq(r.status, 200, r.text);
  eq(r.json.choices[0].text, await emberRun(p, 10));
  const r2 = await cmpl(MAIN, { prompt: ['The little dog', 'Lily and Ben'], max_tokens: 10, temperature: 0, n: 2 });
  eq(r2.status, 200, r2.text);
  eq(r2.json.choices.map(c => c.index), [0, 1, 2, 3]);
  const a = await emberRun('The little dog', 10), b = await emberRun('Lily and Ben', 10);
  eq(r2.json.choices.map(c => c.text), [a, a, b, b]);
  eq(r2.json.usage.prompt_tokens, nTokens('The little dog') + nTokens('Lily and Ben'));
  eq(r2.json.usage.completion_tokens, 40);
});

await test('completions: streaming gives the same text and usage, ends with [DONE]', async () => {
  const p = 'Lily and Ben';
  const r = await cmpl(MAIN, { prompt: p, max_tokens: N, temperature: 0, stream: true,
                               stream_options: { include_usage: true } });
  eq(r.status, 200);
  assert(r.headers.get('content-type').startsWith('text/event-stream'), 'event stream');
  const ev = sseEvents(r.text);
  eq(ev[ev.length - 1], '[DONE]');
  const chunks = ev.slice(0, -1);
  let text = '';
  for (const c of chunks) {
    eq(c.object, 'text_completion');
    if (c.choices.length) text += c.choices[0].text;
  }
  eq(text, solo[p]);
  const fin = chunks.filter(c => c.choices.length && c.choices[0].finish_reason);
  eq(fin.length, 1);
  eq(fin[0].choices[0].finish_reason, 'length');
  const last = chunks[chunks.length - 1];
  eq(last.choices, []);
  eq(last.usage, { prompt_tokens: nTokens(p), completion_tokens: N, total_tokens: nTokens(p) + N });
  assert(chunks.length >= 5, 'streamed in several chunks');
  // without include_usage: no usage chunk
  const r2 = await cmpl(MAIN, { prompt: p, max_tokens: 5, temperature: 0, stream: true });
  const ev2 = sseEvents(r2.text);
  assert(ev2.slice(0, -1).every(c => c.choices.length === 1 && !('usage' in c)), 'no usage');
});

// -------------------------------------------------------------------- chat
await test('chat: the plain template, greedy, stream and non-stream agree', async () => {
  const messages = [{ role: 'system', content: 'Be nice.' }, { role: 'user', content: 'Tell me a story.' }];
  const r = await chat(MAIN, { model: MODEL, messages, max_tokens: 30, temperature: 0 });
  eq(r.status, 200, r.text);
  const j = r.json;
  eq(j.object, 'chat.completion');
  assert(j.id.startsWith('chatcmpl-'), 'id');
  eq(j.choices[0].message.role, 'assistant');
  const prompt = 'system: Be nice.\nuser: Tell me a story.\nassistant:';
  const ref = await cmpl(MAIN, { prompt, max_tokens: 30, temperature: 0, stop: ['\nuser:'] });
  eq(j.choices[0].message.content, ref.json.choices[0].text, 'rendered as "role: content" lines');
  eq(j.usage.prompt_tokens, nTokens(prompt));
  eq(j.usage.completion_tokens, ref.json.usage.completion_tokens);
  const s = await chat(MAIN, { messages, max_tokens: 30, temperature: 0, stream: true,
                               stream_options: { include_usage: true } });
  const ev = sseEvents(s.text);
  eq(ev[ev.length - 1], '[DONE]');
  const chunks = ev.slice(0, -1);
  eq(chunks[0].choices[0].delta, { role: 'assistant', content: '' }, 'first chunk has the role');
  let text = '';
  for (const c of chunks) {
    eq(c.object, 'chat.completion.chunk');
    if (c.choices.length && c.choices[0].delta.content) text += c.choices[0].delta.content;
  }
  eq(text, j.choices[0].message.content);
  eq(chunks[chunks.length - 1].usage, j.usage);
  // content as text parts, developer role
  const r3 = await chat(MAIN, { messages: [{ role: 'developer', content: [{ type: 'text', text: 'Be ' }, { type: 'text', text: 'nice.' }] },
                                           { role: 'user', content: 'Tell me a story.' }], max_tokens: 30, temperature: 0 });
  eq(r3.json.choices[0].message.content, j.choices[0].message.content, 'parts and developer role');
});

await test('chat: n > 1', async () => {
  const messages = [{ role: 'user', content: 'Hi' }];
  const one = await chat(MAIN, { messages, max_tokens: 12, temperature: 0 });
  const r = await chat(MAIN, { messages, max_tokens: 12, temperature: 0, n: 3 });
  eq(r.status, 200, r.text);
  eq(r.json.choices.length, 3);
  for (let i = 0; i < 3; i++) {
    eq(r.json.choices[i].index, i);
    eq(r.json.choices[i].message.content, one.json.choices[0].message.content);
  }
  eq(r.json.usage.prompt_tokens, one.json.usage.prompt_tokens, 'prompt counted once');
  eq(r.json.usage.completion_tokens, 3 * one.json.usage.completion_tokens);
  const s = await chat(MAIN, { messages, max_tokens: 12, temperature: 1, seed: 5, n: 2, stream: true });
  const ev = sseEvents(s.text).slice(0, -1);
  const texts = ['', ''];
  const fins = [0, 0];
  for (const c of ev) for (const ch of c.choices) {
    if (ch.delta.content) texts[ch.index] += ch.delta.content;
    if (ch.finish_reason) fins[ch.index]++;
  }
  eq(fins, [1, 1], 'one finish per choice');
  const ns = await chat(MAIN, { messages, max_tokens: 12, temperature: 1, seed: 5, n: 2 });
  eq(texts, ns.json.choices.map(c => c.message.content), 'streamed n=2 equals non-streamed');
});

// ---------------------------------------------------------------- stop strings
await test('stop strings end the text before the match', async () => {
  const p = 'Once upon a time';
  const full = solo[p];
  const word = ' named';
  const cut = full.indexOf(word);
  assert(cut > 0, `"${word}" in the greedy text`);
  for (const stop of [word, [word, 'zzz'], ['zzz', word]]) {
    const r = await cmpl(MAIN, { prompt: p, max_tokens: N, temperature: 0, stop });
    eq(r.status, 200, r.text);
    eq(r.json.choices[0].text, full.slice(0, cut), `stop ${JSON.stringify(stop)}`);
    eq(r.json.choices[0].finish_reason, 'stop');
    assert(r.json.usage.completion_tokens < N, 'fewer tokens');
  }
  const s = await cmpl(MAIN, { prompt: p, max_tokens: N, temperature: 0, stop: word, stream: true });
  const ev = sseEvents(s.text).slice(0, -1);
  eq(ev.map(c => c.choices[0].text).join(''), full.slice(0, cut), 'streamed');
  eq(ev[ev.length - 1].choices[0].finish_reason, 'stop');
  const none = await cmpl(MAIN, { prompt: p, max_tokens: N, temperature: 0, stop: ['zzz'] });
  eq(none.json.choices[0].text, full, 'no match');
});

// -------------------------------------------------------------------- logprobs
await test('logprobs: chat (content entries) and completions (legacy format)', async () => {
  const r = await chat(MAIN, { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 15, temperature: 0,
                               logprobs: true, top_logprobs: 3 });
  eq(r.status, 200, r.text);
  const c = r.json.choices[0];
  const lp = c.logprobs.content;
  if (c.finish_reason === 'length') eq(lp.length, r.json.usage.completion_tokens, 'one entry per token');
  else assert(lp.length <= r.json.usage.completion_tokens, 'at most one entry per token');
  let text = '';
  for (const e of lp) {
    assert(typeof e.token === 'string' && e.logprob <= 0 && Array.isArray(e.bytes), 'entry fields');
    eq(e.top_logprobs.length, 3);
    eq(e.token, e.top_logprobs[0].token, 'greedy picks the most likely token');
    eq(e.logprob, e.top_logprobs[0].logprob);
    assert(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob && e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob, 'sorted');
    const psum = e.top_logprobs.reduce((a, t) => a + Math.exp(t.logprob), 0);
    assert(psum <= 1.0001, 'probabilities');
    eq(Buffer.from(e.bytes).toString('utf8'), e.token, 'bytes');
    text += e.token;
  }
  if (c.finish_reason === 'length') eq(text, c.message.content, 'tokens spell the text');
  const off = await chat(MAIN, { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3, temperature: 0 });
  eq(off.json.choices[0].logprobs, null);
  const zero = await chat(MAIN, { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3, temperature: 0, logprobs: true });
  assert(zero.json.choices[0].logprobs.content.every(e => e.top_logprobs.length === 0), 'top_logprobs 0');

  const p = 'The little dog';
  const k = await cmpl(MAIN, { prompt: p, max_tokens: 10, temperature: 0, logprobs: 2 });
  eq(k.status, 200, k.text);
  const L = k.json.choices[0].logprobs;
  eq(L.tokens.length, 10);
  eq(L.token_logprobs.length, 10);
  eq(L.top_logprobs.length, 10);
  eq(L.tokens.join(''), k.json.choices[0].text);
  eq(L.text_offset[0], 0);
  for (let i = 0; i < 10; i++) {
    assert(Object.keys(L.top_logprobs[i]).length <= 2 && L.top_logprobs[i][L.tokens[i]] === L.token_logprobs[i], 'top');
    if (i) eq(L.text_offset[i], L.text_offset[i - 1] + Buffer.byteLength(L.tokens[i - 1]));
  }
  const st = await cmpl(MAIN, { prompt: p, max_tokens: 10, temperature: 0, logprobs: 2, stream: true });
  const toks = [];
  for (const c2 of sseEvents(st.text).slice(0, -1)) if (c2.choices[0].logprobs) toks.push(...c2.choices[0].logprobs.tokens);
  eq(toks, L.tokens, 'streamed logprobs');
});

await test('output is always valid UTF-8 (byte tokens at high temperature)', async () => {
  for (const seed of [1, 2]) {
    const r = await cmpl(MAIN, { prompt: 'Once', max_tokens: 80, temperature: 2, top_k: 0, top_p: 1, min_p: 0, seed,
                                 logprobs: 1 });
    eq(r.status, 200); // post() decodes with fatal: true
    const s = await cmpl(MAIN, { prompt: 'Once', max_tokens: 80, temperature: 2, top_k: 0, top_p: 1, min_p: 0, seed, stream: true });
    eq(sseEvents(s.text).slice(0, -1).map(c => c.choices[0].text).join(''), r.json.choices[0].text, 'streamed');
  }
});

// ---------------------------------------------------------------------- errors
await test('errors: malformed bodies', async () => {
  expectError(await cmpl(MAIN, ''), 400, null, 'invalid_json');
  expectError(await cmpl(MAIN, '{"prompt": "x",'), 400, null, 'invalid_json');
  expectError(await cmpl(MAIN, '[1,2]'), 400, null, 'invalid_json');
  expectError(await cmpl(MAIN, '"just a string"'), 400, null, 'invalid_json');
  expectError(await cmpl(MAIN, new Uint8Array([0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])), 400, null, 'invalid_utf8');
  expectError(await chat(MAIN, Buffer.from('{"messages":[{"role":"user","content":"\xc3\x28"}]}', 'latin1')), 400, null, 'invalid_utf8');
  expectError(await cmpl(MAIN, '{"prompt":"\\ud800"}'), 400, null, 'invalid_json'); // lone surrogate
  expectError(await cmpl(MAIN, '['.repeat(5000) + ']'.repeat(5000)), 400, null, 'invalid_json');
});

await test('errors: wrong types and values name the parameter', async () => {
  const bad = [
    [cmpl, { prompt: 'x', temperature: 'hot' }, 'temperature', 'invalid_type'],
    [cmpl, { prompt: 'x', temperature: 3 }, 'temperature', 'invalid_value'],
    [cmpl, { prompt: 'x', top_p: true }, 'top_p', 'invalid_type'],
    [cmpl, { prompt: 'x', top_p: 1.5 }, 'top_p', 'invalid_value'],
    [cmpl, { prompt: 'x', top_k: 1.5 }, 'top_k', 'invalid_type'],
    [cmpl, { prompt: 'x', min_p: -1 }, 'min_p', 'invalid_value'],
    [cmpl, { prompt: 'x', max_tokens: '10' }, 'max_tokens', 'invalid_type'],
    [cmpl, { prompt: 'x', max_tokens: 0 }, 'max_tokens', 'invalid_value'],
    [cmpl, { prompt: 'x', max_tokens: 2.5 }, 'max_tokens', 'invalid_type'],
    [chat, { messages: [{ role: 'user', content: 'x' }], max_completion_tokens: -1 }, 'max_completion_tokens', 'invalid_value'],
    [cmpl, { prompt: 'x', n: 0 }, 'n', 'invalid_value'],
    [cmpl, { prompt: 'x', n: 'two' }, 'n', 'invalid_type'],
    [cmpl, { prompt: 'x', seed: 1.5 }, 'seed', 'invalid_type'],
    [cmpl, { prompt: 'x', seed: 'abc' }, 'seed', 'invalid_type'],
    [cmpl, { prompt: 'x', stop: 5 }, 'stop', 'invalid_type'],
    [cmpl, { prompt: 'x', stop: ['a', 7] }, 'stop', 'invalid_type'],
    [cmpl, { prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'] }, 'stop', 'invalid_value'],
    [cmpl, { prompt: 'x', stop: 'y'.repeat(300) }, 'stop', 'invalid_value'],
    [cmpl, { prompt: 'x', presence_penalty: 2.5 }, 'presence_penalty', 'invalid_value'],
    [cmpl, { prompt: 'x', frequency_penalty: [] }, 'frequency_penalty', 'invalid_type'],
    [cmpl, { prompt: 'x', stream: 'yes' }, 'stream', 'invalid_type'],
    [cmpl, { prompt: 'x', stream_options: { include_usage: true } }, 'stream_options', 'invalid_value'],
    [cmpl, { prompt: 'x', stream: true, stream_options: { include_usage: 1 } }, 'stream_options.include_usage', 'invalid_type'],
    [cmpl, { prompt: 'x', stream: true, stream_options: 'all' }, 'stream_options', 'invalid_type'],
    [cmpl, { prompt: 'x', logprobs: true }, 'logprobs', 'invalid_type'],
    [cmpl, { prompt: 'x', logprobs: 6 }, 'logprobs', 'invalid_value'],
    [chat, { messages: [{ role: 'user', content: 'x' }], logprobs: 1 }, 'logprobs', 'invalid_type'],
    [chat, { messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }, 'top_logprobs', 'invalid_value'],
    [chat, { messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 21 }, 'top_logprobs', 'invalid_value'],
    [cmpl, { prompt: 'x', user: 5 }, 'user', 'invalid_type'],
    [cmpl, { prompt: 'x', model: 5 }, 'model', 'invalid_type'],
    [cmpl, { prompt: 'x', ignore_eos: 1 }, 'ignore_eos', 'invalid_type'],
    [cmpl, {}, 'prompt', 'missing_required_parameter'],
    [cmpl, { prompt: 5 }, 'prompt', 'invalid_type'],
    [cmpl, { prompt: [] }, 'prompt', 'invalid_value'],
    [cmpl, { prompt: [1, 2, 99999] }, 'prompt', 'invalid_value'],
    [cmpl, { prompt: ['a', 5] }, 'prompt', 'invalid_type'],
    [cmpl, { prompt: 'x', echo: true }, 'echo', 'unsupported_value'],
    [chat, {}, 'messages', 'missing_required_parameter'],
    [chat, { messages: 'hello' }, 'messages', 'invalid_type'],
    [chat, { messages: [] }, 'messages', 'invalid_value'],
    [chat, { messages: ['hello'] }, 'messages[0]', 'invalid_type'],
    [chat, { messages: [{ content: 'x' }] }, 'messages[0].role', 'missing_required_parameter'],
    [chat, { messages: [{ role: 'bot', content: 'x' }] }, 'messages[0].role', 'invalid_value'],
    [chat, { messages: [{ role: 'user', content: 'x' }, { role: 'user', content: 5 }] }, 'messages[1].content', 'invalid_type'],
    [chat, { messages: [{ role: 'user' }] }, 'messages[0].content', 'missing_required_parameter'],
    [chat, { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'messages[0].content', 'invalid_value'],
    [chat, { messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] }, 'tools', 'unsupported_parameter'],
  ];
  for (const [fn, body, param, code] of bad) {
    const r = await fn(MAIN, body);
    const e = expectError(r, 400, param, code);
    eq(e.type, 'invalid_request_error');
    assert(e.message.includes(param.split('[')[0].split('.')[0]) || e.message.length > 0, 'message');
  }
});

await test('errors: unknown model 404, prompt longer than the context 400 with the numbers', async () => {
  expectError(await cmpl(MAIN, { model: 'gpt-4', prompt: 'x' }), 404, 'model', 'model_not_found');
  expectError(await chat(MAIN, { model: 'gpt-4', messages: [{ role: 'user', content: 'x' }] }), 404, 'model', 'model_not_found');
  const long = 'Once upon a time '.repeat(200);
  const n = nTokens(long);
  const e = expectError(await cmpl(MAIN, { prompt: long }), 400, 'prompt', 'context_length_exceeded');
  assert(e.message.includes('512') && e.message.includes(String(n)), `numbers in "${e.message}"`);
  const e2 = expectError(await chat(MAIN, { messages: [{ role: 'user', content: long }] }), 400, 'messages', 'context_length_exceeded');
  assert(e2.message.includes('512'), 'chat numbers');
});

await test('errors: unknown path 404, wrong method 405 with Allow', async () => {
  let r = await fetch(MAIN + '/v1/nothing');
  eq(r.status, 404);
  eq((await r.json()).error.code, 'not_found');
  r = await fetch(MAIN + '/v1/completions');
  eq(r.status, 405);
  eq(r.headers.get('allow'), 'POST');
  eq((await r.json()).error.code, 'method_not_allowed');
  r = await fetch(MAIN + '/v1/models', { method: 'POST', body: '{}' });
  eq(r.status, 405);
  r = await fetch(MAIN + '/health', { method: 'DELETE' });
  eq(r.status, 405);
});

await test('errors: request body over --max-body is 413', async () => {
  const big = JSON.stringify({ prompt: 'x'.repeat(70000) });
  expectError(await cmpl(MAIN, big), 413, null, 'request_too_large');
  // chunked upload without a Content-Length
  const r = await fetch(MAIN + '/v1/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, duplex: 'half',
    body: new ReadableStream({ start(c) { for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode(' '.repeat(10000))); c.close(); } }),
  });
  eq(r.status, 413);
  eq((await r.json()).error.code, 'request_too_large');
  eq((await fetch(MAIN + '/health')).status, 200);
});

// ----------------------------------------------------------------- concurrency
await test('8 parallel greedy requests equal each alone and `ember run`', async () => {
  const N2 = 48;
  const refs = PROMPTS.map(p => emberRun(p, N2)); // meanwhile
  const alone = [];
  for (const p of PROMPTS) alone.push((await cmpl(MAIN, { prompt: p, max_tokens: N2, temperature: 0 })).json.choices[0].text);
  const par = await Promise.all(PROMPTS.map((p, i) =>
    i % 2 ? cmpl(MAIN, { prompt: p, max_tokens: N2, temperature: 0 })
          : cmpl(MAIN, { prompt: p, max_tokens: N2, temperature: 0, stream: true })));
  for (let i = 0; i < PROMPTS.length; i++) {
    const t = i % 2 ? par[i].json.choices[0].text : sseEvents(par[i].text).slice(0, -1).map(c => c.choices[0].text).join('');
    eq(t, alone[i], `parallel "${PROMPTS[i]}"`);
    eq(t, await refs[i], `ember run "${PROMPTS[i]}"`);
  }
});

await test('a KV pool too small for all slots preempts and still gives the same tokens', async () => {
  const N3 = 64;
  const refs = PROMPTS.map(p => emberRun(p, N3));
  const before = await metrics(PRE);
  const par = await Promise.all(PROMPTS.map(p => cmpl(PRE, { prompt: p, max_tokens: N3, temperature: 0 })));
  const after = await metrics(PRE);
  for (let i = 0; i < PROMPTS.length; i++) {
    eq(par[i].status, 200, par[i].text);
    eq(par[i].json.choices[0].text, await refs[i], `"${PROMPTS[i]}"`);
    eq(par[i].json.usage.completion_tokens, N3);
  }
  assert(after.ember_preemptions_total > before.ember_preemptions_total, 'a sequence was preempted');
  eq(after.ember_kv_blocks_total, 16);
  eq(after.ember_generation_tokens_total - before.ember_generation_tokens_total, 8 * N3, 'replays are not counted');
});

// ---------------------------------------------------------- contemplation
// `ember run --contemplate`: branches (text in finish order on stdout, a
// summary line each on stderr) and the answer line
async function cliContemplate(prompt, n, agg, extra) {
  const { stdout, stderr } = await execFileP(EMBER, ['run', '-p', prompt, '--contemplate', String(n), '--aggregate', agg,
                                                    ...extra], { encoding: 'utf8' });
  const heads = [...stdout.matchAll(/^--- branch (\d+)\/(\d+) ---\n/gm)];
  const ans = stdout.match(/^=== answer \((\w+), (\d+)\/(\d+) branches agree\): (.*)$/m);
  assert(ans && heads.length === n, `ember run output: ${stdout}`);
  const branches = [];
  heads.forEach((h, k) => {
    const end = k + 1 < heads.length ? heads[k + 1].index : ans.index;
    branches[Number(h[1]) - 1] = { text: stdout.slice(h.index + h[0].length, end - 1) };
  });
  for (const m of stderr.matchAll(/^ember: branch (\d+): (\w+), (\d+) tokens, mean logprob (\S+), answer '(.*)'$/gm))
    Object.assign(branches[Number(m[1]) - 1], { finish: m[2], tokens: Number(m[3]), lp: m[4], answer: m[5] });
  return { branches, answer: ans[4], agree: Number(ans[2]) };
}
const strip = j => { // what must not depend on the run
  const c = JSON.parse(JSON.stringify(j));
  delete c.id; delete c.created; delete c.contemplation.kv_blocks_peak;
  return c;
};
const CT_CASES = [
  { prompt: 'Once upon a time', branches: 8, aggregate: 'vote', temperature: 0.5, seed: 1, max: 64, stop: '.' },
  { prompt: 'The little dog', branches: 4, aggregate: 'best', temperature: 0.9, seed: 3, max: 24 },
  { prompt: 'Lily and Ben', branches: 3, aggregate: 'synthesize', temperature: 1, seed: 5, max: 16, stop: '.' },
];

await test('contemplate: /v1/completions equals `ember run --contemplate` (vote with early stop, best, synthesize)', async () => {
  for (const t of CT_CASES) {
    const [r, cli] = await Promise.all([
      cmpl(CT, { prompt: t.prompt, temperature: t.temperature, seed: t.seed, ...(t.stop ? { stop: t.stop } : {}),
                 contemplate: { branches: t.branches, aggregate: t.aggregate, max_branch_tokens: t.max } }),
      cliContemplate(t.prompt, t.branches, t.aggregate, ['--temp', String(t.temperature), '--seed', String(t.seed),
                     '--branch-tokens', String(t.max), ...(t.stop ? ['--stop', t.stop] : [])])]);
    eq(r.status, 200, r.text);
    const c = r.json.contemplation;
    eq(c.aggregate, t.aggregate);
    eq(r.json.choices.length, 1);
    eq(r.json.choices[0].text, cli.answer, `${t.aggregate}: the answer`);
    eq(c.answer, cli.answer);
    eq(c.votes, cli.agree, 'agreeing branches');
    eq(c.branches.length, t.branches);
    c.branches.forEach((b, i) => {
      const w = cli.branches[i];
      eq(b.text, w.text, `${t.aggregate}: branch ${i} text`);
      eq(b.tokens, w.tokens, `branch ${i} tokens`);
      eq(b.answer, w.answer, `branch ${i} answer`);
      eq(b.finish_reason, w.finish === 'eos' ? 'stop' : w.finish, `branch ${i} finish`);
      eq(b.mean_logprob.toFixed(3), w.lp, `branch ${i} mean logprob`);
    });
    if (t.aggregate === 'vote') assert(c.early_stopped && c.branches.some(b => b.finish_reason === 'cancelled'), 'early stop');
    if (t.aggregate === 'synthesize') assert(c.winner === -1 && c.synthesis && c.synthesis.tokens > 0, 'synthesis pass');
  }
});

await test('contemplate: chat returns one choice with the answer, the branches and exact usage (each aggregate)', async () => {
  const messages = [{ role: 'user', content: 'Tell me a story.' }];
  const pt = nTokens('user: Tell me a story.\nassistant:');
  for (const aggregate of ['vote', 'best', 'synthesize']) {
    const r = await chat(CT, { messages, seed: 9, contemplate: { branches: 3, aggregate, max_branch_tokens: 12 } });
    eq(r.status, 200, r.text);
    const j = r.json, c = j.contemplation;
    eq(j.object, 'chat.completion');
    eq(j.choices.length, 1);
    eq(j.choices[0].message, { role: 'assistant', content: c.answer });
    eq(j.choices[0].finish_reason, 'stop');
    eq(j.choices[0].logprobs, null);
    eq(c.branches.length, 3);
    for (const b of c.branches) {
      for (const k of ['index', 'text', 'answer', 'tokens', 'mean_logprob', 'finish_reason']) assert(k in b, `branch.${k}`);
      assert(['stop', 'length', 'cancelled'].includes(b.finish_reason) && b.tokens >= 1 && b.tokens <= 12, 'branch fields');
    }
    const bt = c.branches.reduce((a, b) => a + b.tokens, 0), st = c.synthesis ? c.synthesis.tokens : 0;
    eq(!!c.synthesis, aggregate === 'synthesize', 'synthesis only when asked');
    eq(j.usage, { prompt_tokens: pt, completion_tokens: bt + st, total_tokens: pt + bt + st }, `${aggregate}: usage`);
    eq(c.tokens, { prompt: pt, branches: bt, synthesis: st, total: bt + st });
    assert(c.agreement >= 0 && c.agreement <= 1 && Math.abs(c.agreement - c.votes / 3) < 1e-9, 'agreement');
    if (aggregate === 'best') {
      const best = c.branches.reduce((a, b) => (b.mean_logprob > a.mean_logprob ? b : a));
      eq(c.winner, best.index, 'best: the highest mean logprob');
    }
    if (aggregate === 'vote' && c.winner >= 0) eq(c.answer, c.branches[c.winner].answer);
    assert(c.kv_blocks_peak > 0, 'kv peak');
  }
});

await test('contemplate: streaming sends branch progress, each branch end, then the answer, usage, [DONE]', async () => {
  const body = { messages: [{ role: 'user', content: 'Tell me a story.' }], seed: 11, temperature: 0.9,
                 contemplate: { branches: 4, aggregate: 'vote', max_branch_tokens: 20 } };
  const [whole, s] = await Promise.all([chat(CT, body),
    chat(CT, { ...body, stream: true, stream_options: { include_usage: true } })]);
  eq(s.status, 200);
  const ev = sseEvents(s.text);
  eq(ev[ev.length - 1], '[DONE]');
  const chunks = ev.slice(0, -1);
  eq(chunks[0].choices[0].delta, { role: 'assistant', content: '' }, 'the role first');
  const texts = ['', '', '', ''], ends = [[], [], [], []];
  let lastBranchEvent = -1, contentAt = -1, content = '', finishAt = -1;
  chunks.forEach((c, k) => {
    eq(c.object, 'chat.completion.chunk');
    if (!c.choices.length) return;
    const d = c.choices[0].delta, x = d.contemplation;
    if (x) {
      assert(contentAt < 0, 'no branch event after the answer');
      lastBranchEvent = k;
      if ('text' in x) { assert(!ends[x.branch].length, `branch ${x.branch} text after its end`); texts[x.branch] += x.text; }
      else ends[x.branch].push(x);
    }
    if (d.content) { contentAt = k; content += d.content; }
    if (c.choices[0].finish_reason) finishAt = k;
  });
  const W = whole.json.contemplation;
  eq(texts, W.branches.map(b => b.text), 'streamed branch texts');
  ends.forEach((e, i) => {
    eq(e.length, 1, `one end event for branch ${i}`);
    const { index, text, ...rest } = W.branches[i];
    eq(e[0], { branch: i, ...rest }, `end of branch ${i}`);
  });
  assert(lastBranchEvent < contentAt && contentAt < finishAt, 'branches, then the answer, then the finish');
  eq(content, whole.json.choices[0].message.content, 'the answer');
  eq(chunks[finishAt].choices[0].finish_reason, 'stop');
  eq(strip({ contemplation: chunks[finishAt].contemplation }), strip({ contemplation: W }), 'the summary');
  const last = chunks[chunks.length - 1];
  eq(last.choices, []);
  eq(last.usage, whole.json.usage, 'usage');
  // /v1/completions streams the same events in the choice, next to "text"
  const cs = await cmpl(CT, { prompt: 'Once upon a time', seed: 1, temperature: 0.5, stop: '.', stream: true,
                              contemplate: { branches: 8, max_branch_tokens: 64 } });
  const cev = sseEvents(cs.text).slice(0, -1);
  const fin = cev.filter(c => c.choices[0].finish_reason);
  eq(fin.length, 1);
  eq(cev.map(c => c.choices[0].text).join(''), fin[0].contemplation.answer, 'completions: the answer as text');
  assert(cev.some(c => c.choices[0].contemplation && c.choices[0].contemplation.finish_reason === 'cancelled'), 'cancelled event');
});

await test('contemplate: the same seed gives the same result alone and next to 7 other requests', async () => {
  const body = { messages: [{ role: 'user', content: 'Tell me a story.' }], seed: 42, temperature: 1,
                 contemplate: { branches: 4, aggregate: 'vote', max_branch_tokens: 32 } };
  const alone = await chat(CT, body);
  eq(alone.status, 200, alone.text);
  const others = PROMPTS.slice(1).map((p, i) => cmpl(CT, { prompt: p, max_tokens: 40 + 5 * i, seed: i }));
  const [busy, ...rest] = await Promise.all([chat(CT, body), ...others]);
  eq(strip(busy.json), strip(alone.json), 'with 7 other requests');
  for (const r of rest) eq(r.status, 200);
  const streamed = await chat(CT, { ...body, stream: true });
  const fin = sseEvents(streamed.text).slice(0, -1).find(c => c.choices.length && c.choices[0].finish_reason);
  eq(strip({ contemplation: fin.contemplation }).contemplation, strip(alone.json).contemplation, 'streamed');
});

await test('contemplate: early stop cancels the branches that can no longer change the vote', async () => {
  const body = { prompt: 'Once upon a time', seed: 1, temperature: 0.5, stop: '.',
                 contemplate: { branches: 8, aggregate: 'vote', max_branch_tokens: 64 } };
  const [on, off] = await Promise.all([cmpl(CT, body),
    cmpl(CT, { ...body, contemplate: { ...body.contemplate, early_stop: false } })]);
  const a = on.json.contemplation, b = off.json.contemplation;
  const cut = a.branches.filter(x => x.finish_reason === 'cancelled');
  assert(cut.length >= 1 && a.early_stopped, 'some branches were cancelled');
  assert(!b.early_stopped && b.branches.every(x => x.finish_reason !== 'cancelled'), 'none without early_stop');
  for (const x of cut) {
    eq(x.answer, '', 'a cancelled branch does not vote');
    assert(x.tokens <= b.branches[x.index].tokens, 'it stopped no later');
  }
  a.branches.filter(x => x.finish_reason !== 'cancelled').forEach(x => eq(x, b.branches[x.index], 'finished branches agree'));
  assert(on.json.usage.completion_tokens < off.json.usage.completion_tokens, 'fewer tokens spent');
  eq(a.answer, b.answer, 'the same answer');
});

await test('contemplate: reasoning_effort maps to the configured branches (at most --slots)', async () => {
  const messages = [{ role: 'user', content: 'Hi' }];
  for (const [effort, n] of [['low', 2], ['medium', 4], ['high', 8]]) {
    const r = await chat(CT, { messages, max_tokens: 4, reasoning_effort: effort });
    eq(r.status, 200, r.text);
    eq(r.json.contemplation.branches.length, n, effort);
    eq(r.json.contemplation.branches.every(b => b.tokens <= 4), true, 'max_tokens is the branch budget');
  }
  eq((await chat(MAIN, { messages, max_tokens: 4, reasoning_effort: 'high' })).json.contemplation.branches.length, 4,
     'capped at 4 slots');
  const none = await chat(CT, { messages, max_tokens: 4, reasoning_effort: 'none' });
  assert(none.status === 200 && !('contemplation' in none.json), 'none: a plain completion');
  const both = await chat(CT, { messages, max_tokens: 4, reasoning_effort: 'low', contemplate: { aggregate: 'best' } });
  eq([both.json.contemplation.branches.length, both.json.contemplation.aggregate], [2, 'best'], 'combined');
  eq((await chat(CT, { messages, max_tokens: 4, contemplate: true })).json.contemplation.branches.length, 4, 'true');
});

await test('contemplate: errors name the parameter', async () => {
  const m = [{ role: 'user', content: 'x' }];
  const bad = [
    [CT, { contemplate: 5 }, 'contemplate', 'invalid_type'],
    [CT, { contemplate: 'yes' }, 'contemplate', 'invalid_type'],
    [CT, { contemplate: { branches: 0 } }, 'contemplate.branches', 'invalid_value'],
    [CT, { contemplate: { branches: 65 } }, 'contemplate.branches', 'invalid_value'],
    [CT, { contemplate: { branches: 2.5 } }, 'contemplate.branches', 'invalid_type'],
    [CT, { contemplate: { branches: '4' } }, 'contemplate.branches', 'invalid_type'],
    [CT, { contemplate: { branches: 9 } }, 'contemplate.branches', 'invalid_value'],
    [CT, { contemplate: { aggregate: 'mean' } }, 'contemplate.aggregate', 'invalid_value'],
    [CT, { contemplate: { aggregate: 3 } }, 'contemplate.aggregate', 'invalid_type'],
    [CT, { contemplate: { max_branch_tokens: 0 } }, 'contemplate.max_branch_tokens', 'invalid_value'],
    [CT, { contemplate: { max_branch_tokens: 'x' } }, 'contemplate.max_branch_tokens', 'invalid_type'],
    [CT, { contemplate: { early_stop: 'no' } }, 'contemplate.early_stop', 'invalid_type'],
    [CT, { contemplate: { beams: 2 } }, 'contemplate.beams', 'unsupported_parameter'],
    [CT, { reasoning_effort: 'extreme' }, 'reasoning_effort', 'invalid_value'],
    [CT, { reasoning_effort: 3 }, 'reasoning_effort', 'invalid_type'],
    [CT, { contemplate: {}, n: 2 }, 'n', 'invalid_value'],
    [CT, { reasoning_effort: 'low', n: 3 }, 'n', 'invalid_value'],
    [CT, { contemplate: {}, logprobs: true }, 'logprobs', 'unsupported_value'],
    [PRE, { contemplate: { branches: 2, max_branch_tokens: 200 } }, 'contemplate', 'invalid_value'], // KV pool of 16 blocks
  ];
  for (const [base, body, param, code] of bad) {
    const e = expectError(await chat(base, { messages: m, ...body }), 400, param, code);
    eq(e.type, 'invalid_request_error');
  }
  expectError(await cmpl(CT, { prompt: ['a', 'b'], contemplate: {} }), 400, 'prompt', 'invalid_value');
  expectError(await cmpl(CT, { prompt: 'a', contemplate: {}, logprobs: 2 }), 400, 'logprobs', 'unsupported_value');
});

await test('contemplate: a 1,000-token prompt and 8 branches hold the prompt\'s KV blocks once (/metrics)', async () => {
  const p = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the sunny park. '.repeat(28);
  const P = nTokens(p), T = 16, BS = 16;
  assert(P >= 900 && P + T < 1280, `prompt of ${P} tokens`);
  const before = await metrics(CT); // also restarts ember_kv_blocks_peak
  const r = await cmpl(CT, { prompt: p, seed: 3, ignore_eos: true,
                             contemplate: { branches: 8, max_branch_tokens: T, early_stop: false } });
  eq(r.status, 200, r.text);
  const after = await metrics(CT);
  const c = r.json.contemplation;
  eq(c.tokens.branches, 8 * T);
  eq(r.json.usage.prompt_tokens, P, 'the prompt counted once');
  const promptBlocks = Math.ceil(P / BS), own = Math.ceil(((P % BS) + T) / BS);
  const peak = after.ember_kv_blocks_peak - before.ember_kv_blocks_used;
  console.log(`    peak ${peak} KV blocks above the ${before.ember_kv_blocks_used} in use before: prompt ${promptBlocks} once ` +
              `+ 8 x ${own} own (8 copies of the prompt would be ${8 * promptBlocks})`);
  assert(peak >= promptBlocks, 'the prompt was held');
  assert(peak <= promptBlocks + 8 * own, `peak ${peak} <= ${promptBlocks} + 8 x ${own}`);
  assert(c.kv_blocks_peak - before.ember_kv_blocks_used <= promptBlocks + 8 * own, 'the response agrees');
  eq(after.ember_kv_blocks_peak >= after.ember_kv_blocks_used, true);
});

// ------------------------------------------------ disconnects, queue, timeouts
await test('a client that disconnects cancels its sequence (stream and non-stream)', async () => {
  const m0 = await metrics(LONG);
  const ac = new AbortController();
  const r = await fetch(LONG + '/v1/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, signal: ac.signal,
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 3000, stream: true, ignore_eos: true }),
  });
  const rd = r.body.getReader();
  await rd.read(); // the first token
  await waitFor(async () => (await metrics(LONG)).ember_slots_active === 1, 3000, 'the sequence to run');
  ac.abort();
  await waitFor(async () => {
    const m = await metrics(LONG);
    return m['ember_sequences_finished_total{reason="cancelled"}'] === m0['ember_sequences_finished_total{reason="cancelled"}'] + 1 &&
           m.ember_slots_active === 0;
  }, 3000, 'the stream to be cancelled');
  const m1 = await metrics(LONG);
  assert(m1.ember_generation_tokens_total - m0.ember_generation_tokens_total < 3000, 'stopped early');

  const ac2 = new AbortController();
  const p = fetch(LONG + '/v1/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, signal: ac2.signal,
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 3000, ignore_eos: true }),
  }).catch(() => null);
  await waitFor(async () => (await metrics(LONG)).ember_slots_active === 1, 3000, 'the sequence to run');
  ac2.abort();
  await p;
  await waitFor(async () => {
    const m = await metrics(LONG);
    return m['ember_sequences_finished_total{reason="cancelled"}'] === m1['ember_sequences_finished_total{reason="cancelled"}'] + 1 &&
           m.ember_slots_active === 0;
  }, 3000, 'the request to be cancelled');
});

await test('a full queue answers 503 with Retry-After', async () => {
  const acs = [new AbortController(), new AbortController()];
  const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 3000, stream: true, ignore_eos: true });
  const running = fetch(LONG + '/v1/completions', { method: 'POST', body, signal: acs[0].signal }).catch(() => null);
  await waitFor(async () => (await metrics(LONG)).ember_slots_active === 1, 3000, 'the first to run');
  const queued = fetch(LONG + '/v1/completions', { method: 'POST', body, signal: acs[1].signal }).catch(() => null);
  await waitFor(async () => (await metrics(LONG)).ember_queue_depth === 1, 3000, 'the second to queue');
  const r = await cmpl(LONG, { prompt: 'x', max_tokens: 5 });
  expectError(r, 503, null, 'queue_full');
  eq(r.headers.get('retry-after'), '1');
  acs[0].abort();
  acs[1].abort();
  await running;
  await queued;
  await waitFor(async () => { const m = await metrics(LONG); return m.ember_slots_active === 0 && m.ember_queue_depth === 0; },
                3000, 'both to be cancelled');
});

await test('the per-request timeout ends long requests (504, or an error event in a stream)', async () => {
  const t0 = Date.now();
  const [r, s] = await Promise.all([
    cmpl(SMALL, { prompt: 'Once upon a time', max_tokens: 3000, ignore_eos: true }),
    cmpl(SMALL, { prompt: 'Once upon a time', max_tokens: 3000, stream: true, ignore_eos: true })]);
  expectError(r, 504, null, 'timeout');
  eq(r.json.error.type, 'timeout_error');
  assert(Date.now() - t0 < 4000, 'within the limit');
  eq(s.status, 200);
  const ev = sseEvents(s.text);
  eq(ev[ev.length - 1], '[DONE]');
  const err = ev.find(e => e !== '[DONE]' && e.error);
  assert(err && err.error.code === 'timeout', 'error event');
});

// ------------------------------------------------------------------ robustness
function rnd(seed) { let x = seed >>> 0; return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296); }
await test('nothing a client sends crashes the server (fuzz)', async () => {
  const R = rnd(42);
  const vals = [null, true, false, 0, -1, 1.5, 1e308, -1e308, 2, 4, '', 'x', 'é\u{1F600}', [], [1], ['a'], {}, { a: 1 },
                [[1, 2]], 'a'.repeat(1000), [{ type: 'text', text: 'hi' }], [{ role: 'user', content: 'hi' }]];
  const fields = ['model', 'prompt', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k',
                  'min_p', 'seed', 'stop', 'presence_penalty', 'frequency_penalty', 'stream', 'stream_options', 'logprobs',
                  'top_logprobs', 'n', 'user', 'repeat_penalty', 'tools', 'response_format', 'echo', 'best_of',
                  'contemplate', 'reasoning_effort'];
  const pick = a => a[Math.floor(R() * a.length)];
  const reqs = [];
  for (let i = 0; i < 160; i++) {
    let body;
    const kind = R();
    if (kind < 0.15) {
      const n = Math.floor(R() * 64);
      body = new Uint8Array(n);
      for (let k = 0; k < n; k++) body[k] = Math.floor(R() * 256);
    } else {
      const o = R() < 0.5 ? { prompt: 'Hi' } : { messages: [{ role: 'user', content: 'Hi' }] };
      for (let k = 0; k < 4; k++) o[pick(fields)] = pick(vals);
      if (typeof o.max_tokens === 'number' || !('max_tokens' in o)) o.max_tokens = 3;
      delete o.max_completion_tokens;
      if (typeof o.n === 'number') o.n = 2;
      body = JSON.stringify(o);
      if (kind > 0.9) body = body.slice(0, Math.floor(R() * body.length));
    }
    reqs.push((R() < 0.5 ? cmpl : chat)(MAIN, body));
    if (reqs.length === 8) {
      for (const r of await Promise.all(reqs.splice(0))) {
        assert([200, 400, 404, 413, 503].includes(r.status), `status ${r.status}: ${r.text}`);
        if (r.status !== 200) assert(r.json && r.json.error && r.json.error.message, `error body: ${r.text}`);
      }
    }
  }
  // raw protocol garbage
  const raw = ['GARBAGE\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nX-Big: ' + 'a'.repeat(100000) + '\r\n\r\n',
               'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
               'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n',
               'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}',
               'GET /%00%ff/../.. HTTP/1.1\r\nHost: x\r\n\r\n', '\x00\x01\x02\xff\r\n\r\n'];
  const port = Number(new URL(MAIN).port);
  for (const msg of raw) {
    await new Promise(resolve => {
      const s = net.connect(port, '127.0.0.1', () => s.end(Buffer.from(msg, 'latin1')));
      s.on('data', () => {});
      s.on('error', resolve);
      s.on('close', resolve);
      s.setTimeout(3000, () => { s.destroy(); resolve(); });
    });
  }
  eq((await fetch(MAIN + '/health')).status, 200, 'still alive');
  eq((await cmpl(MAIN, { prompt: 'Once upon a time', max_tokens: N, temperature: 0 })).json.choices[0].text,
     solo['Once upon a time'], 'still correct');
});

console.log(`server api: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
