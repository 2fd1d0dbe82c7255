// The Meridian operator console: reads the admin listener's JSON (same origin, the browser's
// own credentials) and draws it. No framework, nothing loaded from elsewhere; text is only
// ever set as text, never parsed as HTML.
'use strict';

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function getJson(url) {
  const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = body && body.error && body.error.message ? body.error.message
      : `${response.status} ${response.statusText}`;
    const error = new Error(`${url}: ${message}`);
    error.status = response.status;
    error.code = body && body.error ? body.error.code : undefined;
    throw error;
  }
  return body;
}

function when(ms) {
  if (!ms) return '—';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

function showError(error) {
  const box = $('error');
  box.hidden = false;
  box.textContent = String(error.message || error);
}

function fill(table, head, rows) {
  table.replaceChildren(el('thead', {}, el('tr', {}, head.map((h) => el('th', { text: h })))),
    el('tbody', {}, rows));
}

// ---------------------------------------------------------------- residency matrix

const state = { overview: null, locations: new Map(), loads: 0 };

function locationClass(processing) {
  if (!state.locations.has(processing)) state.locations.set(processing, state.locations.size % 8);
  return `loc-${state.locations.get(processing)}`;
}

function className(c) {
  return c === '' ? `not stated (${state.overview.default_data_class})` : c;
}

function explainUrl(tenant, model, row, cls) {
  const q = new URLSearchParams({ tenant, model, region: row.region });
  if (row.city) q.set('city', row.city);
  if (cls) q.set('class', cls);
  return `/admin/api/explain?${q}`;
}

async function showExplain(url, title) {
  const panel = $('explain');
  panel.hidden = false;
  $('explain-title').textContent = title;
  $('explain-text').textContent = 'deciding…';
  try {
    const body = await getJson(url);
    $('explain-text').textContent = body.text;
  } catch (e) {
    $('explain-text').textContent = String(e.message);
  }
}

async function loadMatrix() {
  const tenant = $('tenant').value;
  const model = $('model').value;
  const q = new URLSearchParams({ tenant, model });
  const m = await getJson(`/admin/api/matrix?${q}`);
  const processing = new Map(m.providers.map((p) => [p.id, p.processing]));
  // The legend in a stable order: each location the providers declare.
  state.locations = new Map();
  const legend = [...new Set(m.providers.map((p) => p.processing))];
  $('legend').replaceChildren(el('strong', { text: 'Chosen provider processes in:' }),
    ...legend.map((loc) => el('span', { class: locationClass(loc), 'data-location': loc },
      `${loc} (${m.providers.filter((p) => p.processing === loc).map((p) => p.id).join(', ')})`)),
    el('span', { class: 'deny-swatch', text: 'denied' }));
  const rows = m.rows.map((row) => {
    const label = row.unnamed ? 'any other region' : row.region === 'unknown' ? 'unknown region'
      : row.region;
    const also = row.codes.length > 1 ? `also ${row.codes.slice(1).join(', ')}` : '';
    const cities = row.cities.length > 3
      ? `${row.cities.slice(0, 3).join(', ')} and ${row.cities.length - 3} more` : row.cities.join(', ');
    const head = el('th', { class: 'row', scope: 'row', title: row.cities.join(', ') || null },
      row.city ? `${label} · ${cities}` : label,
      also ? el('small', { title: row.codes.join(', '), text: also.length > 60
        ? `${also.slice(0, 57)}…` : also }) : null,
      row.unnamed ? el('small', { text: `e.g. ${row.region}` }) : null);
    const cells = row.cells.map((cell) => {
      const url = explainUrl(m.tenant, m.model, row, cell.class);
      const title = `${m.tenant} · ${row.city ? `${row.region}/${row.city}` : row.region} · ` +
        `${className(cell.class)} · ${m.model}`;
      const link = el('a', { href: url, title: `explain: ${title}` }, cell.allowed ? [
        el('span', { class: 'chosen', text: cell.chosen }),
        cell.providers.length > 1
          ? el('span', { class: 'others', text: `then ${cell.providers.slice(1).join(', ')}` })
          : null,
        el('span', { class: 'rule', text: `rule ${cell.rule}` +
          (cell.guards.length ? ` · ${cell.guards.join(', ')}` : '') }),
      ] : [
        el('span', { class: 'chosen', text: 'denied' }),
        el('span', { class: 'rule', text: cell.reason }),
      ]);
      link.addEventListener('click', (event) => {
        event.preventDefault();
        showExplain(url, title);
      });
      const td = el('td', {
        class: cell.allowed ? locationClass(processing.get(cell.chosen)) : 'deny',
        'data-region': row.region, 'data-city': row.city, 'data-class': cell.class,
        'data-chosen': cell.chosen, 'data-location': cell.allowed ? processing.get(cell.chosen)
          : 'denied',
      }, link);
      return td;
    });
    return el('tr', {}, head, cells);
  });
  fill($('matrix'), ['region', ...m.classes.map(className)], rows);
}

// ---------------------------------------------------------------- providers

async function loadProviders() {
  const body = await getJson('/admin/api/providers');
  fill($('providers'), ['provider', 'kind', 'processing', 'storage', 'circuit', 'quarantine'],
    body.providers.map((p) => el('tr', { 'data-provider': p.id },
      el('td', {}, el('strong', { text: p.id }), p.description
        ? el('div', { class: 'muted', text: p.description }) : null),
      el('td', { text: p.kind }),
      el('td', { text: p.processing }),
      el('td', { text: p.storage }),
      el('td', { class: `state-${p.circuit}`, 'data-circuit': p.circuit,
        title: p.circuits.map((c) => `${c.model} (${c.upstream_model}): ${c.state}`).join('\n'),
        text: p.circuit.replace('_', '-') }),
      el('td', p.quarantined ? { class: 'bad', text: `since ${when(p.quarantined.since_unix_ms)}: ` +
        `${p.quarantined.said} (${p.quarantined.request_id})` } : { class: 'muted', text: 'no' }))));
  $('provider-warnings').replaceChildren(...body.warnings.map((w) => el('li', { text: w })));
}

// ---------------------------------------------------------------- export meter

function meterCell(count, band, next) {
  const share = next ? Math.min(100, (100 * count) / next) : 0;
  return el('td', {},
    el('div', {}, el('strong', { text: count.toLocaleString('en') }),
      ` · ${band}`, next ? el('span', { class: 'muted', text: ` · next boundary ${next.toLocaleString('en')}` })
        : null),
    next ? el('div', { class: 'bar', title: `${share.toFixed(1)}% of the way to ${next}` },
      (() => {
        const fillBar = el('span');
        fillBar.style.width = `${share}%`;  // CSSOM: a style attribute would break the CSP
        return fillBar;
      })()) : null);
}

async function loadMeter() {
  const box = $('meter');
  try {
    const m = await getJson('/admin/meter');
    const table = el('table', { id: 'meter-table' });
    fill(table, ['tenant', 'non-sensitive individuals exported', 'sensitive individuals exported'],
      m.tenants.map((t) => el('tr', { 'data-tenant': t.tenant }, el('td', { text: t.tenant }),
        t.error ? el('td', { colspan: 2, class: 'bad', text: t.error })
          : [meterCell(t.non_sensitive, t.non_sensitive_band, t.non_sensitive_next),
            meterCell(t.sensitive, t.sensitive_band, t.sensitive_next)])));
    box.replaceChildren(el('p', { class: 'muted', text: `calendar year ${m.year} (China Standard ` +
      'Time), distinct individuals per tenant whose personal information left the mainland' }), table);
  } catch (e) {
    if (e.code === 'meter_not_configured') {
      box.replaceChildren(el('p', { class: 'muted', id: 'meter-off',
        text: 'The export meter is not configured (export_meter: in the gateway config).' }));
    } else {
      box.replaceChildren(el('p', { class: 'bad', text: e.message }));
    }
  }
}

// ---------------------------------------------------------------- reloads

async function showDiff(n) {
  const panel = $('reload-diff');
  panel.hidden = false;
  $('reload-diff-title').textContent = `What reload ${n} changed`;
  $('reload-diff-summary').textContent = 'deciding both policies over the whole request space…';
  $('reload-diff-text').textContent = '';
  try {
    const d = await getJson(`/admin/api/reloads/diff?n=${n}`);
    const r = d.diff;
    $('reload-diff-summary').replaceChildren(el('p', { id: 'diff-counts' },
      r.error ? r.error : `${r.changed.toLocaleString('en')} of ${r.points.toLocaleString('en')} ` +
        `request points change, in ${r.groups.length} group(s) ` +
        `(${r.decided.toLocaleString('en')} decisions, ${d.computed_ms} ms)`));
    $('reload-diff-text').textContent = d.text;
  } catch (e) {
    $('reload-diff-summary').textContent = e.message;
  }
}

async function loadReloads() {
  const body = await getJson('/admin/api/reloads');
  fill($('reloads'), ['#', 'at', 'trigger', 'result', 'policy', 'changed', ''],
    body.reloads.map((r) => el('tr', { 'data-reload': r.n, 'data-result': r.result },
      el('td', { text: r.n }),
      el('td', { text: when(r.at_unix_ms) }),
      el('td', { text: r.trigger }),
      el('td', { class: r.result === 'refused' ? 'bad' : 'ok' }, r.result,
        r.errors.length ? el('pre', { text: r.errors.join('\n') }) : null),
      el('td', {}, r.policy_before ? el('code', { text: r.policy_before }) : null,
        r.policy_before ? ' → ' : null, el('code', { text: r.policy_after })),
      el('td', { text: r.changed.join(', ') || '—' }),
      el('td', {}, r.diff ? (() => {
        const b = el('button', { type: 'button', class: 'diff', text: 'diff' });
        b.addEventListener('click', () => showDiff(r.n));
        return b;
      })() : null))));
}

// ---------------------------------------------------------------- audit

async function loadAudit() {
  const a = await getJson('/admin/api/audit');
  const box = $('audit');
  if (!a.configured) {
    box.replaceChildren(el('p', { class: 'muted', text: 'No audit log (audit: in the gateway config).' }));
    return;
  }
  const items = [['log', a.path], ['lines written', `${a.written} (last seq ${a.last_seq})`],
    ['writer', a.healthy ? 'healthy' : 'failing']];
  if (!a.signed) {
    items.push(['checkpoints', 'not signed (audit.signing_key_file or signing_key_env)']);
  } else {
    items.push(['signing key', a.key_id], ['checkpoints written', a.checkpoints_written]);
    const v = a.verify;
    if (v.error) {
      items.push(['verification', v.error]);
    } else {
      const r = v.report;
      const tampering = r.findings.filter((f) => f.tampering);
      items.push(['last verified checkpoint', r.signed_through
        ? `seq ${r.signed_through}, signed ${when(r.signed_at_unix_ms)}` : 'none yet']);
      items.push(['verified', `${when(v.at_unix_ms)}: ${r.records} lines of ${v.file}, ` +
        `${r.checkpoints_valid}/${r.checkpoints} checkpoint signatures valid`]);
      items.push(['result', r.verified ? 'no tampering found'
        : `${tampering.length} finding(s) of tampering`]);
      for (const f of tampering) items.push([f.kind, `${f.file}:${f.line}: ${f.message}`]);
    }
  }
  box.replaceChildren(el('dl', {}, items.map(([k, v]) => [el('dt', { text: k }),
    el('dd', { 'data-field': k, class: k === 'result' ? (a.verify.report.verified ? 'ok' : 'bad') : null,
      text: v })])));
}

// ---------------------------------------------------------------- page

async function load() {
  $('error').hidden = true;
  const o = await getJson('/admin/api/overview');
  state.overview = o;
  $('policy-version').textContent = o.policy_version;
  $('loaded-at').textContent = `as of ${when(o.now_unix_ms)}`;
  for (const [id, values] of [['tenant', o.tenants], ['model', o.models]]) {
    const select = $(id);
    const previous = select.value;
    select.replaceChildren(...values.map((v) => el('option', { value: v, text: v })));
    if (values.includes(previous)) select.value = previous;
  }
  const results = await Promise.allSettled([loadMatrix(), loadProviders(), loadMeter(),
    loadReloads(), loadAudit()]);
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length) showError(failed.map((r) => r.reason.message).join('; '));
  state.loads += 1;
  document.body.dataset.loaded = String(state.loads);  // each load finished, counted
}

$('refresh').addEventListener('click', () => load().catch(showError));
$('tenant').addEventListener('change', () => loadMatrix().catch(showError));
$('model').addEventListener('change', () => loadMatrix().catch(showError));
load().catch(showError);
