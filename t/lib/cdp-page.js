// Opens a URL in Debian's headless Chromium through the DevTools protocol
// and reports, as one JSON line: every navigation the page's scripts
// requested (Page.frameRequestedNavigation: this sees a jump to weixin://,
// which no HTTP log can), and what the page shows.  No npm packages: Node's
// own WebSocket (node --experimental-websocket).
//
//   node --experimental-websocket cdp-page.js URL SCREENSHOT.png PROFILE_DIR
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');

const [url, png, profile] = process.argv.slice(2);
const chrome = spawn('/usr/bin/chromium', [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--hide-scrollbars',
  '--window-size=390,640', '--remote-debugging-port=0',
  '--user-data-dir=' + profile, 'about:blank'
], { stdio: ['ignore', 'ignore', 'pipe'] });

const fail = (msg) => {
  console.log(JSON.stringify({ error: msg }));
  chrome.kill('SIGKILL');
  process.exit(1);
};
// A guard against a hang, not a measure: the page takes 13 s here, and a
// cold Chromium on two busy cores (right after t/51) took over 20.
setTimeout(() => fail('timed out'), 60000).unref();

let stderr = '';
chrome.stderr.on('data', (chunk) => {
  stderr += chunk;
  const m = stderr.match(/DevTools listening on (ws:\/\/\S+)/);
  if (m && !this.started) {
    this.started = true;
    run(m[1]).catch((e) => fail(String(e)));
  }
});

async function run(wsUrl) {
  const ws = new WebSocket(wsUrl);
  await new Promise((ok, ko) => { ws.onopen = ok; ws.onerror = ko; });

  let id = 0;
  const pending = new Map();
  const waiters = [];
  const navigations = [];

  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.id && pending.has(msg.id)) {
      const { ok, ko } = pending.get(msg.id);
      pending.delete(msg.id);
      msg.error ? ko(new Error(msg.error.message)) : ok(msg.result);
      return;
    }
    if (msg.method === 'Page.frameRequestedNavigation') {
      navigations.push({ url: msg.params.url, reason: msg.params.reason });
    }
    for (const w of waiters.splice(0)) {
      w(msg);
    }
  };

  const send = (method, params, sessionId) => new Promise((ok, ko) => {
    const mid = ++id;
    pending.set(mid, { ok, ko });
    ws.send(JSON.stringify({ id: mid, method, params: params || {}, sessionId }));
  });

  const until = (pred, ms) => new Promise((ok) => {
    const timer = setTimeout(() => ok(false), ms);
    const check = (msg) => {
      if (pred(msg)) { clearTimeout(timer); ok(true); } else { waiters.push(check); }
    };
    waiters.push(check);
  });

  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  await send('Page.enable', {}, sessionId);
  await send('Runtime.enable', {}, sessionId);

  const loaded = until((m) => m.method === 'Page.loadEventFired', 10000);
  await send('Page.navigate', { url }, sessionId);
  await loaded;
  await until((m) => m.method === 'Page.frameRequestedNavigation'
                     && /^weixin:/.test(m.params.url), 2000);

  const { result } = await send('Runtime.evaluate', {
    returnByValue: true,
    expression: `(() => {
      const a = document.getElementById('open');
      const r = a ? a.getBoundingClientRect() : null;
      return {
        href: a ? a.getAttribute('href') : null,
        button: a ? a.textContent : null,
        visible: !!r && r.width > 0 && r.height > 0
                 && getComputedStyle(a).visibility !== 'hidden',
        h1: (document.querySelector('h1') || {}).innerHTML,
        elementsInH1: document.querySelector('h1')
                      ? document.querySelector('h1').children.length : -1
      };
    })()`
  }, sessionId);

  const shot = await send('Page.captureScreenshot', { format: 'png' }, sessionId);
  fs.writeFileSync(png, Buffer.from(shot.data, 'base64'));

  console.log(JSON.stringify({ navigations, page: result.value }));
  chrome.kill('SIGKILL');
  process.exit(0);
}
