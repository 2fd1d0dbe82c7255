// Drives the real `meridian serve` (embedded demo, a child process on a free port) with the
// official OpenAI SDK for Node, pinned in package-lock.json: chat completions (JSON, streaming
// with usage, decision headers), embeddings (the SDK's default base64 and float), the Responses
// API (create, create with stream, the SDK's responses.stream() helper), models.list /
// models.retrieve, and the SDK's error classes.
// Ends the gateway with SIGTERM and requires exit status 0. Run by tests/sdk/run.sh (ctest
// `sdk_openai_node`): node openai_node_check.mjs MERIDIAN_BINARY. Exits non-zero on the first
// mismatch.
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway } from './gateway.mjs';

const gateway = await startGateway(process.argv[2]);
const { url } = gateway;

const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-meridian-demo', maxRetries: 0 });

// ---- chat completions -----------------------------------------------------------------------
const ask = { model: 'qwen-plus', messages: [{ role: 'user', content: 'Hello' }] };

const r = await client.chat.completions.create(ask);
assert.equal(r.object, 'chat.completion');
assert.equal(r.choices[0].finish_reason, 'stop');
assert.match(r.choices[0].message.content, /^\[simulated ds-cn\] /);
assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
console.log('ok chat non-streaming:', r.choices[0].message.content.slice(0, 40));

const stream = await client.chat.completions.create({ ...ask, stream: true, stream_options: { include_usage: true } });
let text = '', finish = null, usage = null;
for await (const c of stream) {
  text += c.choices[0]?.delta?.content ?? '';
  finish = c.choices[0]?.finish_reason ?? finish;
  usage = c.usage ?? usage;
}
assert.equal(text, r.choices[0].message.content);  // the sim engine is deterministic
assert.equal(finish, 'stop');
assert.equal(usage.completion_tokens, r.usage.completion_tokens);
console.log('ok chat streaming: same text, usage chunk received');

const { response } = await client.chat.completions.create(ask).withResponse();
assert.equal(response.headers.get('x-meridian-provider'), 'ds-cn');
assert.equal(response.headers.get('x-meridian-policy-rule'), 'acme-mainland');
assert.match(response.headers.get('x-meridian-policy-version'), /^sha256:[0-9a-f]{16}$/);
console.log('ok decision headers');

async function rejects(promise, Class, status, code, param) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Class, `${e.constructor.name} is not ${Class.name}: ${e.message}`);
    assert.equal(e.status, status);
    assert.equal(e.code, code);
    if (param) assert.equal(e.param, param);
    return true;
  });
  console.log(`ok ${Class.name} ${status} ${code}`);
}
const sensitive = { headers: { 'x-meridian-data-class': 'sensitive_personal' } };
await rejects(client.chat.completions.create(ask, sensitive), OpenAI.PermissionDeniedError, 403, 'denied_by_guard:G8');
await rejects(client.chat.completions.create({ ...ask, temperature: 9 }), OpenAI.BadRequestError, 400, 'invalid_value', 'temperature');
await rejects(client.chat.completions.create({ ...ask, model: 'gpt-9' }), OpenAI.NotFoundError, 404, 'model_not_found', 'model');

const stranger = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'wrong', maxRetries: 0 });
await assert.rejects(stranger.models.list(), OpenAI.AuthenticationError);
console.log('ok AuthenticationError for an unknown key');

// ---- models ------------------------------------------------------------------------------------
const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), ['qwen-plus', 'qwen-max', 'text-embedding-v4']);
const one = await client.models.retrieve('qwen-max');
assert.equal(one.id, 'qwen-max');
assert.equal(one.object, 'model');
await rejects(client.models.retrieve('gpt-9'), OpenAI.NotFoundError, 404, 'model_not_found', 'model');
console.log('ok models:', models.data.map((m) => m.id).join(', '));

// ---- embeddings ----------------------------------------------------------------------------------
// The SDK asks for base64 unless told otherwise and decodes it itself: both forms must agree.
const embedAsk = { model: 'text-embedding-v4', input: ['the cat sat', 'stock prices'] };
const viaBase64 = await client.embeddings.create(embedAsk);
const viaFloat = await client.embeddings.create({ ...embedAsk, encoding_format: 'float' });
assert.equal(viaBase64.object, 'list');
assert.equal(viaBase64.model, 'text-embedding-v4');
assert.equal(viaBase64.data.length, 2);
assert.deepEqual(viaBase64.data.map((d) => d.index), [0, 1]);
assert.equal(viaBase64.data[0].embedding.length, 64);  // the sim's default length
// The same float32 values: JSON carries each float's shortest form, base64 its exact bits.
assert.deepEqual(viaBase64.data.map((d) => d.embedding), viaFloat.data.map((d) => d.embedding.map(Math.fround)));
assert.ok(viaBase64.usage.prompt_tokens > 0);
const sized = await client.embeddings.create({ ...embedAsk, input: 'hello', dimensions: 16 });
assert.equal(sized.data[0].embedding.length, 16);
const norm = Math.hypot(...sized.data[0].embedding);
assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
// Decided like chat: a mobile number in an input raises the data class, named in a header.
const { response: embedResponse } = await client.embeddings
  .create({ model: 'text-embedding-v4', input: ['call me', '13812345678'] }, { headers: { 'x-meridian-data-class': 'none' } })
  .withResponse();
assert.equal(embedResponse.headers.get('x-meridian-provider'), 'ds-cn');
assert.equal(embedResponse.headers.get('x-meridian-data-class-raised'), 'personal; by=cn_mobile');
await rejects(client.embeddings.create({ model: 'qwen-plus', input: 'x' }), OpenAI.PermissionDeniedError, 403,
  'capability_unavailable_in_allowed_set');
await rejects(client.embeddings.create({ ...embedAsk, input: [] }), OpenAI.BadRequestError, 400, 'empty_array', 'input');
console.log('ok embeddings: base64 and float agree, dimensions, classified, capability enforced');

// ---- Responses API -----------------------------------------------------------------------------
const chat = r.choices[0].message.content;
const created = await client.responses.create({ model: 'qwen-plus', input: 'Hello', instructions: 'Be brief.' });
assert.equal(created.object, 'response');
assert.equal(created.status, 'completed');
assert.equal(created.store, false);
assert.equal(created.instructions, 'Be brief.');
assert.match(created.id, /^resp_[0-9a-f]{16}$/);
assert.match(created.output_text, /^\[simulated ds-cn\] /);
assert.equal(created.usage.total_tokens, created.usage.input_tokens + created.usage.output_tokens);
console.log('ok responses.create:', created.output_text.slice(0, 40));

const input = [{ role: 'user', content: [{ type: 'input_text', text: 'Hello' }] }];
const events = await client.responses.create({ model: 'qwen-plus', input, stream: true });
const types = [];
let streamed = '', completed = null, sequence = -1;
for await (const e of events) {
  types.push(e.type);
  assert.equal(e.sequence_number, sequence + 1);
  sequence = e.sequence_number;
  if (e.type === 'response.output_text.delta') streamed += e.delta;
  if (e.type === 'response.completed') completed = e.response;
}
assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
assert.equal(streamed, chat);  // the same deterministic answer as chat completions gave
assert.equal(completed.output[0].content[0].text, streamed);
console.log(`ok responses stream: ${types.length} events in order, same text`);

const helper = client.responses.stream({ model: 'qwen-plus', input: 'Hello' });
let deltas = '';
helper.on('response.output_text.delta', (e) => { deltas += e.delta; });
const final = await helper.finalResponse();
assert.equal(final.status, 'completed');
assert.equal(final.output_text, chat);
assert.equal(deltas, chat);
console.log('ok responses.stream() helper: finalResponse and deltas agree');

await rejects(client.responses.create({ model: 'qwen-plus', input: 'Hi', previous_response_id: 'resp_1' }),
              OpenAI.BadRequestError, 400, 'unsupported_parameter', 'previous_response_id');
await rejects(client.responses.create({ model: 'gpt-9', input: 'Hi' }), OpenAI.NotFoundError, 404, 'model_not_found', 'model');
await rejects(client.responses.create({ model: 'qwen-plus', input: 'Hi' }, sensitive), OpenAI.PermissionDeniedError, 403, 'denied_by_guard:G8');
await assert.rejects(client.responses.retrieve('resp_0123456789abcdef'), OpenAI.NotFoundError);
console.log('ok responses.retrieve: NotFoundError (nothing is stored)');

// ---- legacy completions ------------------------------------------------------------------------
const legacy = await client.completions.create({ model: 'qwen-plus', prompt: 'Hello', max_tokens: 64 });
assert.equal(legacy.object, 'text_completion');
assert.equal(legacy.choices[0].text, chat);
assert.equal(legacy.choices[0].finish_reason, 'stop');
let legacyText = '';
for await (const c of await client.completions.create({ model: 'qwen-plus', prompt: 'Hello', max_tokens: 64, stream: true })) {
  legacyText += c.choices[0]?.text ?? '';
}
assert.equal(legacyText, chat);
await rejects(client.completions.create({ model: 'qwen-plus', prompt: ['a', 'b'] }), OpenAI.BadRequestError, 400, 'unsupported_parameter', 'prompt');
console.log('ok completions.create: JSON and stream, same text as chat');

// ---- the process ends cleanly --------------------------------------------------------------------
await gateway.stop();

// ---- rate limits: a second gateway, the demo config with one request per minute per user -------
{
  const dir = mkdtempSync(join(tmpdir(), 'meridian-sdk-'));
  const examples = join(process.env.MERIDIAN_SOURCE_DIR, 'config', 'examples');
  copyFileSync(join(examples, 'policy.yaml'), join(dir, 'policy.yaml'));
  writeFileSync(join(dir, 'gateway.yaml'), readFileSync(join(examples, 'gateway.yaml'), 'utf8') +
                '    limits: {per_subject: {requests_per_minute: 1}}\n');
  const limited = await startGateway(process.argv[2], ['--config', join(dir, 'gateway.yaml'), '--simulate']);
  const c2 = new OpenAI({ baseURL: `${limited.url}/v1`, apiKey: 'sk-meridian-demo', maxRetries: 0 });
  const asUser = { ...ask, user: 'sdk-check-user' };
  const { response: first } = await c2.chat.completions.create(asUser).withResponse();
  assert.equal(first.headers.get('x-ratelimit-limit-requests'), '1');
  assert.equal(first.headers.get('x-ratelimit-remaining-requests'), '0');
  await assert.rejects(c2.chat.completions.create(asUser), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 429);
    assert.equal(e.code, 'rate_limit_exceeded');
    const h = e.headers;
    assert.ok(Number(typeof h.get === 'function' ? h.get('retry-after') : h['retry-after']) >= 1);
    return true;
  });
  console.log('ok RateLimitError 429 rate_limit_exceeded, Retry-After');
  await c2.chat.completions.create({ ...ask, user: 'another-user' });  // each user apart
  console.log('ok another user is not limited by the first');
  await limited.stop();
  rmSync(dir, { recursive: true, force: true });
}
