// The real `meridian serve` (embedded demo, or the config given) as a child process for the SDK checks: started on
// a free port, its URL read from its own "listening on" line (no polling), stopped with
// SIGTERM, which must end it with exit status 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';

// `args` after `serve` (default: none, the embedded demo). With `admin`, also waits for the
// admin listener's "admin listening on" line (its URL is `adminUrl`).
export async function startGateway(binary, args = [], { admin = false, env = process.env } = {}) {
  assert.ok(binary, 'usage: node CHECK.mjs MERIDIAN_BINARY');
  const child = spawn(binary, ['serve', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let log = '';
  let adminUrl;
  const url = await new Promise((resolve, reject) => {
    const onData = (data) => {
      log += data;
      const m = /(?<!admin )listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      const a = /admin listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (a) adminUrl = a[1];
      if (m && (!admin || a)) resolve(m[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`meridian exited (${code}) before listening:\n${log}`)));
  });
  const exited = once(child, 'exit');
  return {
    url,
    adminUrl,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      const [code, signal] = await exited;
      assert.equal(signal, null, `meridian died of ${signal}:\n${log}`);
      assert.equal(code, 0, `meridian exited ${code}:\n${log}`);
      console.log('ok SIGTERM: exit status 0');
    },
  };
}
