// Drives `meridian serve` (embedded demo) with the official OpenAI SDK for Node: JSON,
// streaming with usage, response headers, and the SDK's error classes for policy denials and
// bad requests. Run with scripts/sdk-check.sh. Exits non-zero on the first mismatch.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.MERIDIAN_URL, apiKey: 'sk-meridian-demo', maxRetries: 0 });
const ask = { model: 'qwen-plus', messages: [{ role: 'user', content: 'Hello' }] };

const r = await client.chat.completions.create(ask);
assert.equal(r.object, 'chat.completion');
assert.equal(r.choices[0].finish_reason, 'stop');
assert.match(r.choices[0].message.content, /^\[simulated ds-cn\] /);
assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
console.log('ok non-streaming:', r.choices[0].message.content.slice(0, 40));

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
console.log('ok streaming: same text, usage chunk received');

const { response } = await client.chat.completions.create(ask).withResponse();
assert.equal(response.headers.get('x-meridian-provider'), 'ds-cn');
assert.equal(response.headers.get('x-meridian-policy-rule'), 'acme-mainland');
assert.match(response.headers.get('x-meridian-policy-version'), /^sha256:[0-9a-f]{16}$/);
console.log('ok decision headers');

async function rejects(req, headers, Class, status, code, param) {
  await assert.rejects(client.chat.completions.create(req, { headers }), (e) => {
    assert.ok(e instanceof Class, `${e.constructor.name} is not ${Class.name}`);
    assert.equal(e.status, status);
    assert.equal(e.code, code);
    if (param) assert.equal(e.param, param);
    return true;
  });
  console.log(`ok ${Class.name} ${status} ${code}`);
}
await rejects(ask, { 'x-meridian-data-class': 'sensitive_personal' }, OpenAI.PermissionDeniedError, 403, 'denied_by_guard:G8');
await rejects({ ...ask, temperature: 9 }, {}, OpenAI.BadRequestError, 400, 'invalid_value', 'temperature');
await rejects({ ...ask, model: 'gpt-9' }, {}, OpenAI.NotFoundError, 404, 'model_not_found', 'model');

const stranger = new OpenAI({ baseURL: process.env.MERIDIAN_URL, apiKey: 'wrong', maxRetries: 0 });
await assert.rejects(stranger.models.list(), OpenAI.AuthenticationError);
console.log('ok AuthenticationError for an unknown key');

const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), ['qwen-plus', 'qwen-max']);
console.log('ok models:', models.data.map((m) => m.id).join(', '));
