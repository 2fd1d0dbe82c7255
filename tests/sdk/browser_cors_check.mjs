// A web page calling the real `meridian serve` from Debian's headless chromium (driven by
// playwright-core, pinned in package-lock.json): the browser's own CORS machinery, not a
// hand-written preflight. The page is served from two origins: one listed under
// cors.allowed_origins, one not. From the listed origin the page's fetch (JSON body and an
// Authorization header, so the browser preflights) gets its answer, reads the exposed
// decision headers and reads a stream as it arrives; from the other origin the browser refuses
// to hand the page the answer. Run by tests/sdk/run.sh (ctest `sdk_browser_cors`):
// node browser_cors_check.mjs MERIDIAN_BINARY. Needs /usr/bin/chromium.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startGateway } from './gateway.mjs';

const source = process.env.MERIDIAN_SOURCE_DIR;
assert.ok(source, 'MERIDIAN_SOURCE_DIR (set by run.sh)');

// The page's server first: its port makes the origins.
const page = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><title>meridian cors</title><p>ready</p>');
});
page.listen(0, '127.0.0.1');
await once(page, 'listening');
const pagePort = page.address().port;
const allowed = `http://127.0.0.1:${pagePort}`;
const other = `http://localhost:${pagePort}`;

// The demo configuration with simulated providers, plus the one allowed origin.
const dir = mkdtempSync(join(tmpdir(), 'meridian-cors-'));
const demo = readFileSync(join(source, 'config/examples/gateway.yaml'), 'utf8')
  .replace(/^policy_file: .*$/m, `policy_file: ${join(source, 'config/examples/policy.yaml')}`);
writeFileSync(join(dir, 'gateway.yaml'), `${demo}\ncors:\n  allowed_origins: ["${allowed}"]\n  max_age_s: 60\n`);
const gateway = await startGateway(process.argv[2], ['--config', join(dir, 'gateway.yaml'), '--simulate']);

// As root in a closed network: no sandbox, and none of chromium's own background connections.
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext();
  const tab = await context.newPage();

  // What the page does: a chat completion with the demo key, JSON then streamed.
  const call = async (origin) => {
    await tab.goto(`${origin}/`);
    return tab.evaluate(async (url) => {
      const body = (stream) => JSON.stringify({
        model: 'qwen-plus', stream, messages: [{ role: 'user', content: 'Hello from a page' }],
      });
      const init = (stream) => ({
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-meridian-demo' },
        body: body(stream),
      });
      try {
        const r = await fetch(`${url}/v1/chat/completions`, init(false));
        const json = await r.json();
        const s = await fetch(`${url}/v1/chat/completions`, init(true));
        const reader = s.body.getReader();
        let events = '';
        let reads = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          reads += 1;
          events += new TextDecoder().decode(value);
        }
        return {
          ok: true,
          status: r.status,
          content: json.choices[0].message.content,
          provider: r.headers.get('x-meridian-provider'),
          rule: r.headers.get('x-meridian-policy-rule'),
          requestId: r.headers.get('x-request-id'),
          streamDone: events.includes('data: [DONE]'),
          reads,
        };
      } catch (e) {
        return { ok: false, error: String(e) };
      }
    }, gateway.url);
  };

  const fromAllowed = await call(allowed);
  assert.equal(fromAllowed.ok, true, JSON.stringify(fromAllowed));
  assert.equal(fromAllowed.status, 200);
  assert.match(fromAllowed.content, /^\[simulated ds-cn\] /);
  assert.equal(fromAllowed.provider, 'ds-cn');  // exposed: the page can read the decision
  assert.equal(fromAllowed.rule, 'acme-mainland');
  assert.match(fromAllowed.requestId, /^req_[0-9a-f]{16}$/);
  assert.equal(fromAllowed.streamDone, true);
  console.log(`ok ${allowed}: preflight passed, answer and decision headers read, stream read in ${fromAllowed.reads} reads`);

  const fromOther = await call(other);
  assert.equal(fromOther.ok, false, JSON.stringify(fromOther));
  assert.match(fromOther.error, /TypeError/);
  console.log(`ok ${other}: the browser kept the answer from the page (${fromOther.error})`);
} finally {
  await browser.close();
  page.close();
}
await gateway.stop();
