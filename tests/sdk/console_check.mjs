// The operator console in Debian's headless chromium (driven by playwright-core, pinned in
// package-lock.json) against the real `meridian serve` with its admin listener and a signed
// audit log: what the page renders from the loaded policy (the residency matrix, coloured by
// where the chosen provider processes, cells opening their explanation), the providers and
// their circuits, the export meter's state, the reloads with the diff one made, the audit
// chain's last verified checkpoint; and that it is behind the admin token, loads nothing from
// elsewhere and runs under its Content-Security-Policy. Leaves console.png in the working
// directory (docs/console.png is one). Run by tests/sdk/run.sh (ctest `sdk_console`):
// node console_check.mjs MERIDIAN_BINARY. Needs /usr/bin/chromium.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startGateway } from './gateway.mjs';

const source = process.env.MERIDIAN_SOURCE_DIR;
assert.ok(source, 'MERIDIAN_SOURCE_DIR (set by run.sh)');
const binary = process.argv[2];

// The demo configuration with simulated providers, an admin listener, a signed audit log and
// the export meter on a real redis-server (Debian's; a loopback port, its readiness read from
// its own log line).
const dir = mkdtempSync(join(tmpdir(), 'meridian-console-'));
const probe = createServer().listen(0, '127.0.0.1');
await once(probe, 'listening');
const redisPort = probe.address().port;
probe.close();
await once(probe, 'close');
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1',
  '--save', '', '--appendonly', 'yes', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
process.on('exit', () => redis.kill('SIGTERM'));  // also when an assertion ends the check early
await new Promise((resolve, reject) => {
  let out = '';
  redis.stdout.on('data', (d) => {
    out += d;
    if (/Ready to accept connections/.test(out)) resolve();
  });
  redis.on('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${out}`)));
});
const policyPath = join(dir, 'policy.yaml');
const example = readFileSync(join(source, 'config/examples/policy.yaml'), 'utf8');
writeFileSync(policyPath, example);
execFileSync(binary, ['audit', 'keygen', join(dir, 'audit.key')]);
const demo = readFileSync(join(source, 'config/examples/gateway.yaml'), 'utf8')
  .replace(/^policy_file: .*$/m, `policy_file: ${policyPath}`);
writeFileSync(join(dir, 'gateway.yaml'), `${demo}
admin:
  listen: 127.0.0.1:0
  token_env: MERIDIAN_ADMIN_TOKEN
audit:
  path: ${join(dir, 'logs', 'audit.log')}
  signing_key_file: ${join(dir, 'audit.key')}
  checkpoint_interval_s: 1
store: {kind: redis, address: "127.0.0.1:${redisPort}"}
export_meter: {hmac_key_env: MERIDIAN_METER_KEY}
`);
execFileSync('mkdir', ['-p', join(dir, 'logs')]);
const token = 'console-test-token-0123456789';
const gateway = await startGateway(binary, ['--config', join(dir, 'gateway.yaml'), '--simulate'],
  { admin: true, env: { ...process.env, MERIDIAN_ADMIN_TOKEN: token,
    MERIDIAN_METER_KEY: 'console-test-meter-key-0123456789abcdef' } });
const admin = gateway.adminUrl;
const basic = `Basic ${Buffer.from(`operator:${token}`).toString('base64')}`;

// Behind the admin token: the browser is asked for it (Basic, the token as the password).
{
  const r = await fetch(`${admin}/admin/console`);
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /^Basic realm="meridian-admin"/);
  const wrong = await fetch(`${admin}/admin/api/overview`, {
    headers: { authorization: `Basic ${Buffer.from('operator:not-the-token').toString('base64')}` },
  });
  assert.equal(wrong.status, 401);
  assert.equal((await wrong.json()).error.code, 'invalid_admin_token');
  // Basic credentials are for reading only: a browser would send them cross-site too.
  const post = await fetch(`${admin}/admin/reload`, { method: 'POST', headers: { authorization: basic } });
  assert.equal(post.status, 401);
  const page = await fetch(`${admin}/admin/console`, { headers: { authorization: basic } });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy'), /default-src 'none'/);
  assert.equal(page.headers.get('cache-control'), 'no-store');
  const bad = await fetch(`${admin}/admin/api/matrix?tenant=nobody`, { headers: { authorization: basic } });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /unknown tenant 'nobody'/);
  const answer = async (path, init = {}) => {
    const r = await fetch(`${admin}${path}`, { ...init, headers: { authorization: `Bearer ${token}` } });
    return [r.status, (await r.json()).error];
  };
  const [s1, e1] = await answer('/admin/api/explain?tenant=acme&region=XX');
  assert.equal(s1, 400);
  assert.match(e1.message, /unknown region code 'XX'/);
  const [s2, e2] = await answer('/admin/api/matrix?tenant=acme&colour=red');
  assert.equal(s2, 400);
  assert.match(e2.message, /unknown parameter 'colour' \(the parameters are tenant, model\)/);
  assert.equal((await answer('/admin/api/nothing'))[0], 404);
  assert.equal((await answer('/admin/console/secret.txt'))[0], 404);
  assert.equal((await answer('/admin/api/matrix', { method: 'POST' }))[0], 405);
  assert.equal((await answer('/admin/api/reloads/diff?n=0'))[0], 404);  // the start: no diff
  assert.equal((await answer('/admin/api/reloads/diff?n=x'))[0], 400);
  console.log('ok the console needs the admin token; Basic only for GETs; bad queries are 400s');
}

// Requests to audit, and a first signed checkpoint covering them (one per second).
for (let i = 0; i < 3; ++i) {
  const r = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-meridian-demo' },
    body: JSON.stringify({ model: 'qwen-plus', messages: [{ role: 'user', content: 'Hello' }] }),
  });
  assert.equal(r.status, 200);
}
const auditStatus = async () => (await fetch(`${admin}/admin/api/audit`, { headers: { authorization: basic } })).json();
for (let a = await auditStatus(); !(a.verify.report && a.verify.report.signed_through >= 3); a = await auditStatus()) {
  await new Promise((resolve) => { setTimeout(resolve, 100); });  // until the writer's next checkpoint
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({
    httpCredentials: { username: 'operator', password: token },
    viewport: { width: 1440, height: 900 },
  });
  const tab = await context.newPage();
  const requests = [];
  const problems = [];
  tab.on('request', (r) => requests.push(r.url()));
  tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  tab.on('console', (m) => {
    // The one refusal a page load expects: the first request, before the browser was asked
    // for the token.
    if (m.type() === 'error' && !/Failed to load resource: .* 401/.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
  tab.on('response', (r) => {
    const expected = r.status() < 400 ||
      (r.status() === 401 && r.request().resourceType() === 'document');
    if (!expected) problems.push(`${r.status()} for ${r.url()}`);
  });
  // The page counts its finished loads: wait for the next one, not an earlier one's mark.
  let loads = 0;
  const loaded = async () => {
    loads += 1;
    await tab.waitForFunction((n) => Number(document.body.dataset.loaded) >= n, loads);
    assert.equal(await tab.locator('#error').isHidden(), true, await tab.locator('#error').textContent());
  };
  await tab.goto(`${admin}/admin/console`);
  await loaded();

  // The loaded policy, as a matrix for the first tenant and model alias.
  const version = (await (await fetch(`${admin}/admin/api/overview`, { headers: { authorization: basic } })).json()).policy_version;
  assert.equal(await tab.locator('#policy-version').textContent(), version);
  assert.equal(await tab.locator('#tenant').inputValue(), 'acme');
  assert.equal(await tab.locator('#model').inputValue(), 'qwen-plus');
  const cell = (region, cls, city = '') =>
    tab.locator(`#matrix td[data-region="${region}"][data-class="${cls}"][data-city="${city}"]`);
  assert.equal(await cell('CN', 'personal').getAttribute('data-chosen'), 'ds-cn');
  assert.equal(await cell('CN', 'personal').getAttribute('data-location'), '{CN}');
  assert.match(await cell('CN', 'personal').textContent(), /ds-cn.*then onprem-qwen.*rule acme-mainland/);
  // Sensitive personal information without separate consent: G8 denies everywhere.
  assert.equal(await cell('CN', 'sensitive_personal').getAttribute('data-location'), 'denied');
  assert.match(await cell('CN', 'sensitive_personal').textContent(), /denied.*denied_by_guard:G8/);
  // Greater Bay Area cities decide differently (route acme-gba): one row for the nine.
  const gba = cell('CN', 'personal', 'dongguan');
  assert.equal(await gba.count(), 1);
  assert.match(await gba.textContent(), /rule acme-gba/);
  assert.match(await tab.locator('#matrix tr:has(td[data-region="CN"][data-city="dongguan"]) th').textContent(),
    /CN · dongguan, foshan, guangzhou and 6 more/);
  // Hong Kong: guard G7 keeps it off anything that may touch the mainland.
  assert.equal(await cell('HK', 'personal').getAttribute('data-chosen'), 'ds-intl');
  assert.equal(await cell('HK', 'personal').getAttribute('data-location'), 'anywhere except {CN}');
  // Colour by processing location: the legend names each, and cells of one location share it.
  const legend = await tab.locator('#legend span[data-location]').allTextContents();
  assert.ok(legend.some((t) => t.startsWith('{CN} (onprem-qwen, ds-cn)')), legend.join('; '));
  const cnClass = await cell('CN', 'personal').getAttribute('class');
  assert.equal(await cell('CN', 'important').getAttribute('data-chosen'), 'onprem-qwen');
  assert.equal(await cell('CN', 'important').getAttribute('class'), cnClass);
  assert.notEqual(await cell('HK', 'personal').getAttribute('class'), cnClass);
  // Another model: the EU row is served in the EU.
  await tab.locator('#model').selectOption('gpt-4.1');
  await tab.waitForFunction(() => document.querySelector('#matrix td[data-region="EU"][data-class="personal"]')?.dataset.chosen === 'az-eu-dz');
  assert.equal(await cell('EU', 'personal').getAttribute('data-location'), '{EU}');
  assert.equal(await cell('CN', 'none').getAttribute('data-chosen'), 'oai-us');
  await tab.locator('#model').selectOption('qwen-plus');
  await tab.waitForFunction(() => document.querySelector('#matrix td[data-region="CN"][data-class="personal"]')?.dataset.chosen === 'ds-cn');
  assert.doesNotMatch(await tab.locator('main').textContent(), /\b(null|undefined|NaN)\b/);
  // A cell opens its explanation.
  await cell('CN', 'personal', 'dongguan').locator('a').click();
  await tab.waitForFunction(() => /rule\s+acme-gba/.test(document.querySelector('#explain-text').textContent));
  const explained = await tab.locator('#explain-text').textContent();
  assert.match(explained, /decision\s+ALLOW -> ds-cn/);
  assert.match(explained, /ds-hk dropped by guard G2/);
  console.log('ok residency matrix: chosen providers, colours by processing location, explain');

  // Providers and circuits.
  const providers = tab.locator('#providers tr[data-provider]');
  assert.equal(await providers.count(), 9);
  assert.equal(await tab.locator('#providers tr[data-provider="ds-cn"] td[data-circuit]').textContent(), 'closed');
  assert.match(await tab.locator('#providers tr[data-provider="oai-eu"]').textContent(), /\{EU\}/);
  // The export meter against its bands: nobody exported yet; the next boundary is the first
  // threshold the policy or the law draws.
  const meter = tab.locator('#meter-table tr[data-tenant="acme"]');
  assert.match(await meter.locator('td').nth(1).textContent(), /^0 · below 100000 · next boundary 100,000$/);
  assert.match(await meter.locator('td').nth(2).textContent(), /^0 · below 10000 · next boundary 10,000$/);
  assert.match(await tab.locator('#meter').textContent(), /calendar year 20\d\d \(China Standard Time\)/);
  // The audit chain: verified with the public key, through the checkpoint that covers the requests.
  const field = (name) => tab.locator(`#audit dd[data-field="${name}"]`).textContent();
  assert.equal(await field('result'), 'no tampering found');
  assert.match(await field('last verified checkpoint'), /^seq ([3-9]|\d\d+), signed \d{4}-\d\d-\d\d /);
  console.log('ok providers, meter, audit chain');

  // A reload that drops the GBA route, then its diff.
  writeFileSync(policyPath, example.replace(/ {2}- id: acme-gba\n( {4}[^\n]*\n)+\n/, ''));
  const reload = await fetch(`${admin}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  assert.equal(reload.status, 200);
  await tab.locator('#refresh').click();
  await tab.waitForFunction((v) => document.querySelector('#policy-version').textContent !== v, version);
  await loaded();
  assert.equal(await cell('CN', 'personal', 'dongguan').count(), 0);
  const row = tab.locator('#reloads tr[data-result="loaded"]', { has: tab.locator('button.diff') }).first();
  assert.match(await row.textContent(), new RegExp(`${version.replace(':', '.')}.*→`));
  await row.locator('button.diff').click();
  await tab.waitForFunction(() => /request points change/.test(document.querySelector('#reload-diff-summary').textContent), null, { timeout: 120000 });
  assert.match(await tab.locator('#diff-counts').textContent(), /^[1-9][\d,]* of [\d,]+ request points change, in \d+ group\(s\)/);
  const diffText = await tab.locator('#reload-diff-text').textContent();
  assert.match(diffText, /acme-gba/);
  assert.match(diffText, /acme-mainland/);
  assert.equal(await tab.locator('#reloads tr[data-result="loaded"] td:nth-child(3)', { hasText: 'start' }).count(), 1);
  console.log('ok reloads and the diff a reload made');

  await tab.locator('#explain').evaluate((e) => { e.hidden = true; });
  await tab.screenshot({ path: 'console.png', fullPage: true });
  // Nothing but the admin listener was asked for anything; no script error, no CSP report.
  const elsewhere = requests.filter((u) => !u.startsWith(`${admin}/`));
  assert.deepEqual(elsewhere, []);
  assert.deepEqual(problems, []);
  console.log(`ok ${requests.length} requests, all to the admin listener; screenshot console.png`);
} finally {
  await browser.close();
  await gateway.stop();
  redis.kill('SIGTERM');
}
