// Drives the real `meridian serve` (embedded demo, a child process on a free port) with the
// official Anthropic SDK for Node, pinned in package-lock.json: messages.create, the
// messages.stream() helper, x-api-key authentication, and the SDK's error classes. Ends the
// gateway with SIGTERM and requires exit status 0. Run by tests/sdk/run.sh (ctest
// `sdk_anthropic_node`). Exits non-zero on the first mismatch.
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startGateway } from './gateway.mjs';

const gateway = await startGateway(process.argv[2]);
const { url } = gateway;

// The SDK sends the key as x-api-key, with anthropic-version.
const client = new Anthropic({ baseURL: url, apiKey: 'sk-meridian-demo', maxRetries: 0 });
const ask = { model: 'qwen-plus', max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }] };

const m = await client.messages.create({ ...ask, system: 'Be brief.' });
assert.equal(m.type, 'message');
assert.equal(m.role, 'assistant');
assert.match(m.id, /^msg_[0-9a-f]{16}$/);
assert.equal(m.stop_reason, 'end_turn');
assert.equal(m.content[0].type, 'text');
assert.match(m.content[0].text, /^\[simulated ds-cn\] /);
assert.ok(m.usage.output_tokens > 0);
console.log('ok messages.create:', m.content[0].text.slice(0, 40));

const stream = client.messages.stream(ask);
let text = '';
stream.on('text', (delta) => { text += delta; });
const final = await stream.finalMessage();
assert.equal(final.stop_reason, 'end_turn');
assert.equal(final.content[0].text, text);
assert.match(text, /^\[simulated ds-cn\] /);
assert.equal(final.usage.output_tokens, m.usage.output_tokens);  // the sim is deterministic
console.log('ok messages.stream(): finalMessage and text deltas agree');

const { response } = await client.messages.create(ask).withResponse();
assert.equal(response.headers.get('x-meridian-provider'), 'ds-cn');
assert.equal(response.headers.get('x-meridian-policy-rule'), 'acme-mainland');
console.log('ok decision headers');

async function rejects(promise, Class, status, type) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Class, `${e.constructor.name} is not ${Class.name}: ${e.message}`);
    assert.equal(e.status, status);
    assert.equal(e.error?.error?.type, type);
    return true;
  });
  console.log(`ok ${Class.name} ${status} ${type}`);
}
await rejects(client.messages.create(ask, { headers: { 'x-meridian-data-class': 'sensitive_personal' } }),
              Anthropic.PermissionDeniedError, 403, 'permission_error');
await rejects(client.messages.create({ ...ask, model: 'claude-9' }), Anthropic.NotFoundError, 404, 'not_found_error');
await rejects(client.messages.create({ ...ask, temperature: 3 }), Anthropic.BadRequestError, 400, 'invalid_request_error');
const stranger = new Anthropic({ baseURL: url, apiKey: 'wrong', maxRetries: 0 });
await rejects(stranger.messages.create(ask), Anthropic.AuthenticationError, 401, 'authentication_error');

await gateway.stop();
