// shep-sim console: the АРМ РШЭП workstation and the personal cabinet.
// No framework and no build: WebCrypto signs, fetch and EventSource talk to
// /console/api. Reports are signed here as ШЭП business data: an enveloped
// XMLDSig (exclusive c14n) over <body xmlns="urn:shep-sim:body:v1">, which
// this code writes already in canonical form, so what it hashes is what the
// gateway's canonicalizer produces.
'use strict';

const STATUS_RU = {
  ACCEPTED: 'Принята шлюзом',
  DELIVERED: 'Доставлена услугодателю',
  REGISTERED: 'Зарегистрирована',
  IN_WORK: 'В работе',
  TERM_EXTENDED: 'Срок продлён',
  RETURNED_TO_CENTRE: 'Возвращена в ЦОН',
  REFUSED: 'Мотивированный отказ',
  COMPLETED: 'Исполнена',
  NOT_DELIVERED: 'Не доставлена',
  ISSUED: 'Выдана',
  UNCOLLECTED: 'Не востребована',
};

const DS = 'http://www.w3.org/2000/09/xmldsig#';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const SIGNATURE_URI = {
  ED25519: 'http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519',
  ECDSA_P256_SHA256: 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
  RSA_PKCS1_SHA256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
};

const state = { token: null, who: null, key: null, certificatePem: null, certificates: [], selected: null, events: null, after: 0 };
const $ = (id) => document.getElementById(id);

// --- bytes ---------------------------------------------------------------
const utf8 = (text) => new TextEncoder().encode(text);
function b64(bytes) {
  let binary = '';
  new Uint8Array(bytes).forEach((byte) => { binary += String.fromCharCode(byte); });
  return btoa(binary);
}
function unb64(text) {
  const binary = atob(text.replace(/\s+/g, ''));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}
function pemBlocks(pem, label) {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...pem.matchAll(re)].map((m) => m[1].replace(/\s+/g, ''));
}
// Text and attribute escaping as c14n writes it.
function esc(text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
}
// WebCrypto's ECDSA r‖s as ASN.1 DER (a SignedDocument's signature value).
function ecdsaDer(raw) {
  const int = (bytes) => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i += 1;
    let v = Array.from(bytes.slice(i));
    if (v[0] & 0x80) v = [0].concat(v);
    return [0x02, v.length].concat(v);
  };
  const r = int(raw.slice(0, 32));
  const s = int(raw.slice(32));
  return new Uint8Array([0x30, r.length + s.length].concat(r, s));
}

// --- the key -------------------------------------------------------------
async function importKey(pem) {
  const der = unb64(pemBlocks(pem, 'PRIVATE KEY')[0] || '');
  const tries = [
    ['ED25519', { name: 'Ed25519' }, { name: 'Ed25519' }],
    ['ECDSA_P256_SHA256', { name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' }],
    ['RSA_PKCS1_SHA256', { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, { name: 'RSASSA-PKCS1-v1_5' }],
  ];
  for (const [algorithm, importAs, signAs] of tries) {
    try {
      const key = await crypto.subtle.importKey('pkcs8', der, importAs, false, ['sign']);
      return { algorithm, sign: async (bytes) => new Uint8Array(await crypto.subtle.sign(signAs, key, bytes)) };
    } catch (_) { /* the next algorithm */ }
  }
  throw new Error('ключ не распознан: нужен PKCS#8 Ed25519, ECDSA P-256 или RSA');
}

function signedInfo(algorithm, digest, declare) {
  return `<ds:SignedInfo${declare ? ` xmlns:ds="${DS}"` : ''}>`
    + `<ds:CanonicalizationMethod Algorithm="${EXC_C14N}"></ds:CanonicalizationMethod>`
    + `<ds:SignatureMethod Algorithm="${SIGNATURE_URI[algorithm]}"></ds:SignatureMethod>`
    + '<ds:Reference URI=""><ds:Transforms>'
    + `<ds:Transform Algorithm="${DS}enveloped-signature"></ds:Transform>`
    + `<ds:Transform Algorithm="${EXC_C14N}"></ds:Transform>`
    + '</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"></ds:DigestMethod>'
    + `<ds:DigestValue>${digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>`;
}

// The enveloped XMLDSig of a <body> written in canonical form.
async function signBody(body) {
  const digest = b64(await crypto.subtle.digest('SHA-256', utf8(body)));
  // Exclusive c14n of SignedInfo as the apex renders the ds prefix it uses.
  const value = b64(await state.key.sign(utf8(signedInfo(state.key.algorithm, digest, true))));
  const certificates = state.certificates.map((c) => `<ds:X509Certificate>${c}</ds:X509Certificate>`).join('');
  const signature = `<ds:Signature xmlns:ds="${DS}">${signedInfo(state.key.algorithm, digest, false)}`
    + `<ds:SignatureValue>${value}</ds:SignatureValue><ds:KeyInfo><ds:X509Data>${certificates}</ds:X509Data></ds:KeyInfo></ds:Signature>`;
  return body.replace(/<\/body>$/, `${signature}</body>`);
}

// --- the API -------------------------------------------------------------
async function api(path, options = {}) {
  const headers = { 'content-type': 'application/json' };
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  const response = await fetch(`/console/api/${path}`, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${body.reason || response.status}: ${body.message || ''}`);
  return body;
}

function fmtDate(value) {
  return value ? new Date(value).toLocaleString('ru-RU') : '—';
}

// --- pages ---------------------------------------------------------------
function show(section) {
  for (const id of ['login', 'admin-login', 'desk', 'cabinet', 'flow', 'operator']) $(id).hidden = id !== section;
}

function route() {
  if (location.hash === '#/flow' || location.hash === '#/operator') {
    const page = location.hash.slice(2);
    if (!state.admin) { state.adminPage = page; show('admin-login'); return; }
    show(page);
    if (page === 'flow') refreshFlow(); else refreshOperator();
    return;
  }
  const page = location.hash === '#/cabinet' ? 'cabinet' : 'desk';
  const wanted = page === 'desk' ? 'employee' : 'applicant';
  if (!state.who || state.who.role !== wanted) {
    $('login-title').textContent = page === 'desk' ? 'Вход сотрудника услугодателя' : 'Вход в личный кабинет';
    $('provider-row').hidden = page !== 'desk';
    state.page = page;
    show('login');
    return;
  }
  show(page);
  if (page === 'desk') refreshDesk(); else openCabinet();
}

async function loadProviders() {
  const { providers } = await api('providers');
  $('provider').innerHTML = providers.map((p) => `<option value="${esc(p.id)}">${esc(p.name)} (${esc(p.id)})</option>`).join('');
}

async function readFile(input) {
  const file = input.files[0];
  if (!file) throw new Error('выберите файл');
  return file.text();
}

async function login(event) {
  event.preventDefault();
  $('login-error').textContent = '';
  try {
    const keyPem = await readFile($('key'));
    state.certificatePem = await readFile($('cert'));
    state.certificates = pemBlocks(state.certificatePem, 'CERTIFICATE');
    state.key = await importKey(keyPem);
    const { challenge } = await api('challenge');
    const signature = b64(await state.key.sign(utf8(challenge)));
    const provider = state.page === 'desk' ? $('provider').value : null;
    const answer = await api('login', {
      method: 'POST',
      body: JSON.stringify({ challenge, algorithm: state.key.algorithm, certificate_pem: state.certificatePem, signature, provider }),
    });
    state.token = answer.token;
    state.who = answer.who;
    $('who').textContent = `${answer.who.name} (ИИН ${answer.who.iin || '—'}${answer.who.provider ? `, ${answer.who.provider}` : ''})`;
    route();
  } catch (error) {
    $('login-error').textContent = `Вход не выполнен: ${error.message}`;
  }
}

// --- АРМ РШЭП --------------------------------------------------------------
async function refreshDesk() {
  const { provider, applications } = await api('desk/inbox');
  $('desk-provider').textContent = provider;
  state.inbox = applications;
  $('desk-table').tBodies[0].innerHTML = applications.map((item, index) => {
    const a = item.application;
    return `<tr class="${a.overdue ? 'overdue' : ''}"><td>${esc(a.messageId)}</td><td>${esc(a.serviceId)}</td>`
      + `<td>${esc((a.subject || {}).iin || (a.subject || {}).bin || '')}</td>`
      + `<td class="status">${esc(STATUS_RU[a.status] || a.status)}${a.overdue ? ' — просрочена' : ''}</td>`
      + `<td>${fmtDate(a.dueAt || a.expectedAt)}</td>`
      + `<td><button type="button" data-open="${index}">Открыть</button></td></tr>`;
  }).join('');
  if (state.selected) {
    const again = applications.find((item) => item.application.messageId === state.selected);
    if (again) openApplication(again);
  }
}

function openApplication(item) {
  const a = item.application;
  state.selected = a.messageId;
  $('desk-detail').hidden = false;
  $('detail-id').textContent = a.messageId;
  const signature = item.signature.valid ? `верна (${item.signature.signer}, ИИН ${item.signature.iin})` : `НЕ верна: ${item.signature.problem}`;
  $('detail-facts').innerHTML = [
    ['Услуга', a.serviceId], ['Заявитель', (a.subject || {}).iin || (a.subject || {}).bin],
    ['Канал', a.channel], ['Отправитель', a.senderId], ['Статус', STATUS_RU[a.status] || a.status],
    ['Регистрационный номер', a.registrationNumber || '—'], ['Срок', fmtDate(a.dueAt || a.expectedAt)],
    ['ЭЦП заявки', signature],
  ].map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('');
  let form = item.form;
  try { form = JSON.stringify(JSON.parse(item.form), null, 2); } catch (_) { /* as it came */ }
  $('detail-form').textContent = form || '—';
  $('detail-attachments').innerHTML = item.attachments.map((f) => `<li>${esc(f.name)} (${esc(f.contentType)}, ${f.size} байт)</li>`).join('') || '<li>нет</li>';
  $('detail-events').innerHTML = (a.events || []).map((e) => `<li>${fmtDate(e.occurredAt)} — ${esc(STATUS_RU[e.status] || e.status)} ${esc(e.notification || '')}</li>`).join('');
}

async function report(event) {
  event.preventDefault();
  const item = state.inbox.find((i) => i.application.messageId === state.selected);
  if (!item) return;
  const a = item.application;
  const status = $('action').value;
  const subject = (a.subject || {}).iin ? `<iin>${esc(a.subject.iin)}</iin>` : `<bin>${esc(a.subject.bin)}</bin>`;
  let fields = '';
  if ($('reg-number').value) fields += `<registrationNumber>${esc($('reg-number').value)}</registrationNumber>`;
  if ($('expected').value) fields += `<expectedAt>${new Date($('expected').value).toISOString().replace(/\.\d{3}Z$/, 'Z')}</expectedAt>`;
  if ($('reason').value) fields += `<reason>${esc($('reason').value)}</reason>`;
  try {
    if (status === 'COMPLETED') fields += await resultDocument($('result-text').value || 'Результат оказания услуги');
    const body = `<body xmlns="urn:shep-sim:body:v1"><subject>${subject}</subject><channel>PROVIDER_DESK</channel>`
      + `<report><status>${status}</status>${fields}</report></body>`;
    const xml = await signBody(body);
    const receipt = await api('desk/report', { method: 'POST', body: JSON.stringify({ correlation_id: a.messageId, xml }) });
    $('action-result').className = 'ok';
    $('action-result').textContent = `Отправлено: ${STATUS_RU[receipt.status] || receipt.status} (событие № ${receipt.sequence})`;
    await refreshDesk();
  } catch (error) {
    $('action-result').className = 'error';
    $('action-result').textContent = `Отказ шлюза: ${error.message}`;
  }
}

// The result as a SignedDocument: a detached signature over its bytes.
async function resultDocument(text) {
  const content = utf8(text);
  let value = await state.key.sign(content);
  if (state.key.algorithm === 'ECDSA_P256_SHA256') value = ecdsaDer(value);
  const chain = state.certificates.slice(1).map((c) => `<chainDer>${c}</chainDer>`).join('');
  return '<result><name>result.txt</name><contentType>text/plain</contentType>'
    + `<content>${b64(content)}</content><signature><algorithm>${state.key.algorithm}</algorithm>`
    + `<certificateDer>${state.certificates[0]}</certificateDer><value>${b64(value)}</value>${chain}</signature></result>`;
}

// --- Личный кабинет --------------------------------------------------------
async function openCabinet() {
  const { applications } = await api('cabinet/history');
  $('history-table').tBodies[0].innerHTML = applications.map((a) => {
    const done = (a.events || []).some((e) => e.result);
    return `<tr><td>${esc(a.messageId)}</td><td>${esc(a.serviceId)}</td>`
      + `<td class="status" data-status-of="${esc(a.messageId)}">${esc(STATUS_RU[a.status] || a.status)}</td>`
      + `<td>${esc(a.registrationNumber || '—')}</td>`
      + `<td>${done ? `<button type="button" data-result="${esc(a.messageId)}">Скачать результат</button>` : '—'}</td></tr>`;
  }).join('');
  if (!state.events) follow();
}

// «Уведомления»: the Watch feed of the applicant, as it happens.
function follow() {
  state.events = new EventSource(`/console/api/cabinet/events?token=${encodeURIComponent(state.token)}&after=${state.after}`);
  state.events.addEventListener('status', (message) => {
    const event = JSON.parse(message.data);
    state.after = Math.max(state.after, Number(event.sequence));
    const li = document.createElement('li');
    li.textContent = `${fmtDate(event.occurredAt)} — заявка ${event.messageId}: ${STATUS_RU[event.status] || event.status}${event.notification ? `. ${event.notification}` : ''}`;
    li.dataset.status = event.status;
    $('notifications').prepend(li);
    openCabinet();
  });
}

async function downloadResult(messageId) {
  const document_ = await api(`cabinet/result/${encodeURIComponent(messageId)}`);
  $('result-check').className = document_.verified ? 'ok' : 'error';
  $('result-check').textContent = document_.verified
    ? `Подпись результата верна: ${document_.signer}`
    : `Подпись результата НЕ верна: ${document_.problem}`;
  const link = document.createElement('a');
  link.href = `data:${document_.contentType};base64,${document_.content}`;
  link.download = document_.name;
  link.click();
}

// --- the operator: the Admin API as JSON, under its token ------------------
async function admin(method, body = {}, session = state.adminSession) {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${state.admin}` };
  if (session) headers['x-shep-session'] = session;
  const response = await fetch(`/admin/v1/${method}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${answer.reason || answer.code || response.status}: ${answer.message || JSON.stringify(answer)}`);
  return answer;
}

async function adminLogin(event) {
  event.preventDefault();
  state.admin = $('admin-token').value.trim();
  state.adminSession = $('admin-session').value.trim();
  try {
    await admin('ListRoutes');
    $('admin-error').textContent = '';
    location.hash = `#/${state.adminPage || 'flow'}`;
    route();
  } catch (error) {
    state.admin = null;
    $('admin-error').textContent = `Вход не выполнен: ${error.message}`;
  }
}

// «Поток»: the exchange journal as it grows, and the per-hop latencies.
async function refreshFlow() {
  if ($('flow').hidden) return;
  const filter = { session: $('flow-session').value.trim(), serviceId: $('flow-service').value.trim(), subject: $('flow-system').value.trim() };
  const key = JSON.stringify(filter);
  if (state.flowKey !== key) { state.flowKey = key; state.flowRows = []; state.flowAfter = 0; }
  // The journal answers oldest first from a cursor: read on from the last
  // row seen and keep the newest 200.
  for (;;) {
    const { exchanges = [] } = await admin('ListExchanges', { filter: { ...filter, afterSequence: String(state.flowAfter) }, limit: 500 }, '');
    if (!exchanges.length) break;
    state.flowRows = state.flowRows.concat(exchanges).slice(-200);
    state.flowAfter = Number(exchanges[exchanges.length - 1].sequence);
    if (exchanges.length < 500) break;
  }
  $('flow-table').tBodies[0].innerHTML = state.flowRows.slice().reverse().map((x) => {
    const refused = x.code && x.code !== 'OK';
    return `<tr class="${refused ? 'refused' : ''}"><td>${esc(x.sequence)}</td><td>${fmtDate(x.time)}</td><td>${esc(x.hop)}</td>`
      + `<td>${esc((x.rpc || '').split('/').pop())}</td><td>${esc(x.serviceId || '')}</td><td>${esc(x.subject || '')}</td>`
      + `<td>${esc(x.messageId || '')}</td><td>${refused ? esc(`${x.reason || x.code}: ${x.errorMessage || ''}`) : 'OK'}</td>`
      + `<td>${esc(x.durationUs || '')}</td></tr>`;
  }).join('');
  drawHops(await (await fetch('/metrics')).text());
}

// shep_hop_duration_seconds buckets, summed over services, one chart per hop.
function drawHops(text) {
  const hops = {};
  const service = $('flow-service').value.trim();
  for (const line of text.split('\n')) {
    const m = line.match(/^shep_hop_duration_seconds_bucket\{([^}]*)\} (\S+)/);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (service && labels.service !== service) continue;
    const key = `${labels.rpc} · ${labels.hop}`;
    hops[key] = hops[key] || {};
    hops[key][labels.le] = (hops[key][labels.le] || 0) + Number(m[2]);
  }
  $('hops').innerHTML = Object.entries(hops).map(([key, buckets]) => {
    const bounds = Object.keys(buckets).filter((le) => le !== '+Inf').sort((a, b) => Number(a) - Number(b));
    let last = 0;
    const bars = bounds.map((le) => { const d = buckets[le] - last; last = buckets[le]; return [Number(le), d]; });
    const total = buckets['+Inf'] || 0;
    const top = Math.max(1, ...bars.map(([, d]) => d));
    const quantile = (q) => { let seen = 0; for (const [le, d] of bars) { seen += d; if (seen >= q * total) return le; } return '+Inf'; };
    const svg = bars.map(([, d], i) => `<rect x="${i * 9}" y="${60 - (d / top) * 60}" width="7" height="${(d / top) * 60}"></rect>`).join('');
    return `<figure class="hop"><svg width="${bars.length * 9}" height="60" role="img" aria-label="${esc(key)}">${svg}</svg>`
      + `<figcaption>${esc(key)}: ${total} шт., p50 ≤ ${fmtSeconds(quantile(0.5))}, p99 ≤ ${fmtSeconds(quantile(0.99))}</figcaption></figure>`;
  }).join('') || '<p class="muted">пока нет измерений</p>';
}

function fmtSeconds(value) {
  return typeof value === 'number' ? (value < 1 ? `${(value * 1000).toFixed(1)} мс` : `${value} с`) : value;
}

async function refreshOperator() {
  $('operator-session').textContent = state.adminSession ? `Сессия: ${state.adminSession}` : 'Без сессии: сбои и фикстуры — глобальные';
  const { routes = [] } = await admin('ListRoutes');
  $('routes-table').tBodies[0].innerHTML = routes.map((r) => `<tr><td>${esc(r.serviceId)}</td><td>${esc(r.nameRu || '')}</td><td>${esc(r.kind || '')}</td>`
    + `<td>${esc((r.senders || []).join(', '))}</td><td>${esc(r.registry || Object.values(r.providersByRegion || {}).concat(r.defaultProvider || []).join(', '))}</td></tr>`).join('');
  const { faults = [] } = await admin('ListFaults');
  $('faults-table').tBodies[0].innerHTML = faults.map((f) => `<tr><td>${esc(f.id)}</td><td>${esc(JSON.stringify(f.target || {}))}</td>`
    + `<td>${esc(JSON.stringify(f.error || f.delay || f.hang || f.effect || {}))}</td><td><button type="button" data-fault="${esc(f.id)}">Удалить</button></td></tr>`).join('');
  const fixtures = await admin('ListFixtures').catch((error) => ({ documents: [error.message] }));
  $('fixtures').textContent = (fixtures.documents || []).join('\n---\n') || 'нет';
  const { scenarios = [] } = await admin('ListScenarios');
  $('scenarios').innerHTML = scenarios.map((x) => `<li>${esc(x.name)} <button type="button" data-scenario="${esc(x.name)}">Применить</button></li>`).join('') || '<li>нет</li>';
  const { deadLetters = [] } = await admin('ListDeadLetters', {}, '');
  $('dead-table').tBodies[0].innerHTML = deadLetters.map((d) => `<tr><td>${esc(d.messageId)}</td><td>${esc(d.serviceId)}</td><td>${esc(d.providerId)}</td>`
    + `<td>${esc(d.reason)}</td><td><button type="button" data-requeue="${esc(d.messageId)}">Вернуть в очередь</button></td></tr>`).join('');
}

async function operatorAction(event, call) {
  event.preventDefault();
  try { await call(); } finally { refreshOperator(); }
}

function wireOperator() {
  $('admin-form').addEventListener('submit', adminLogin);
  $('flow-filter').addEventListener('submit', (event) => { event.preventDefault(); refreshFlow(); });
  $('route-form').addEventListener('submit', (event) => operatorAction(event, async () => {
    try {
      const route_ = await admin('PutRoute', { toml: $('route-toml').value });
      $('route-result').className = 'ok';
      $('route-result').textContent = `Маршрут ${route_.serviceId} сохранён`;
    } catch (error) {
      $('route-result').className = 'error';
      $('route-result').textContent = `Маршрут не принят: ${error.message}`;
    }
  }));
  $('fault-form').addEventListener('submit', (event) => operatorAction(event, async () => {
    try {
      const fault = await admin('AddFault', JSON.parse($('fault-json').value));
      $('fault-result').className = 'ok';
      $('fault-result').textContent = `Сбой ${fault.id} добавлен`;
    } catch (error) {
      $('fault-result').className = 'error';
      $('fault-result').textContent = `Сбой не принят: ${error.message}`;
    }
  }));
  $('fixture-form').addEventListener('submit', (event) => operatorAction(event, async () => {
    try {
      await admin('PutFixtures', { name: $('fixture-name').value.trim(), json: $('fixture-json').value });
      $('fixture-result').className = 'ok';
      $('fixture-result').textContent = 'Фикстуры загружены';
    } catch (error) {
      $('fixture-result').className = 'error';
      $('fixture-result').textContent = `Фикстуры не приняты: ${error.message}`;
    }
  }));
  $('faults-table').addEventListener('click', (event) => {
    if (event.target.dataset.fault) operatorAction(event, () => admin('DeleteFault', { id: event.target.dataset.fault }));
  });
  $('scenarios').addEventListener('click', (event) => {
    if (event.target.dataset.scenario) operatorAction(event, () => admin('ApplyScenario', { name: event.target.dataset.scenario }));
  });
  $('dead-table').addEventListener('click', (event) => {
    if (event.target.dataset.requeue) {
      operatorAction(event, async () => {
        await admin('RequeueDeadLetter', { messageId: event.target.dataset.requeue }, '');
        $('dead-result').textContent = `Заявка ${event.target.dataset.requeue} возвращена в очередь`;
      });
    }
  });
  setInterval(() => { if (!$('flow').hidden) refreshFlow(); }, 1000);
}

// --- wiring --------------------------------------------------------------
document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', login);
  $('action-form').addEventListener('submit', report);
  $('desk-refresh').addEventListener('click', refreshDesk);
  $('desk-table').addEventListener('click', (event) => {
    const index = event.target.dataset.open;
    if (index !== undefined) openApplication(state.inbox[Number(index)]);
  });
  $('history-table').addEventListener('click', (event) => {
    if (event.target.dataset.result) downloadResult(event.target.dataset.result);
  });
  wireOperator();
  window.addEventListener('hashchange', route);
  loadProviders().then(route);
  // The inbox fills as applications arrive.
  setInterval(() => { if (!$('desk').hidden) refreshDesk(); }, 3000);
});
