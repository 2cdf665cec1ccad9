#!/usr/bin/env node
// Load test for `flashfix serve` (loopback only, bounded in clients and time; not part of ctest).
//
// Starts the server, then for --duration seconds runs --clients concurrent streaming chat clients
// (each sends its next request as soon as the previous one ends) plus a trickle of malformed
// requests (bad JSON, wrong types, unknown model, garbage bytes, oversized bodies, disconnects mid-
// stream). Reports requests/s, time to first token (p50/p99), failures, and the server's resident
// memory after warm-up and at the end, sampled every second (flat RSS = no leak).
//
// usage: node bench/serve_load.mjs --bin build/flashfix --model M.gguf [--clients 32] [--duration 60]
//          [--warmup 10] [--max-tokens 32] [--threads N] [--parallel N] [--json OUT]
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const opt = { bin: 'build/flashfix', model: '', clients: 32, duration: 60, warmup: 10, 'max-tokens': 32, threads: 0, parallel: 8, json: '' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (!(key in opt) || argv[i + 1] === undefined) { console.error(`unknown or incomplete option ${argv[i]}`); process.exit(2); }
  opt[key] = typeof opt[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
}
if (!opt.model) { console.error('--model M.gguf is required'); process.exit(2); }

// --- the server -------------------------------------------------------------------------------
const serverArgs = ['serve', '--model', opt.model, '--port', '0', '--parallel', String(opt.parallel),
  '--max-queue', String(opt.clients * 2), '--model-name', 'bench'];
if (opt.threads) serverArgs.push('--threads', String(opt.threads));
const server = spawn(opt.bin, serverArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
let serverExit = null;
server.on('exit', (code, signal) => { serverExit = { code, signal }; });
const port = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/listening on http:\/\/[^:]+:(\d+)/);
    if (m) resolve(Number(m[1]));
  });
  server.on('exit', () => reject(new Error(`server exited before listening: ${out}`)));
});

const rssMiB = () => {
  try {
    return Number(readFileSync(`/proc/${server.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024;
  } catch { return NaN; }
};

// --- one streaming request ---------------------------------------------------------------------
const agent = new http.Agent({ keepAlive: true, maxSockets: opt.clients + 8 });
const prompts = ['Write a haiku about the sea.', 'Explain recursion to a child.', 'List three prime numbers.',
  'What is the capital of France?', 'Summarize the plot of Hamlet.', 'How do magnets work?'];

function streamChat(i) {
  const body = JSON.stringify({
    model: 'bench', stream: true, max_tokens: opt['max-tokens'], temperature: 0.8, seed: i,
    messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: prompts[i % prompts.length] }],
  });
  return new Promise((resolve) => {
    const t0 = performance.now();
    let ttft = null, buf = '', done = false;
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, at);
          buf = buf.slice(at + 2);
          if (!event.startsWith('data: ')) continue;  // heartbeat comments
          const data = event.slice(6);
          if (data === '[DONE]') { done = true; continue; }
          const delta = JSON.parse(data).choices?.[0]?.delta ?? {};
          if (ttft === null && (delta.content || delta.reasoning_content || delta.tool_calls)) ttft = performance.now() - t0;
        }
      });
      res.on('end', () => resolve({ ok: res.statusCode === 200 && done, status: res.statusCode, ttft, ms: performance.now() - t0 }));
    });
    req.on('error', (e) => resolve({ ok: false, status: 0, error: e.message, ms: performance.now() - t0 }));
    req.end(body);
  });
}

// --- malformed traffic -------------------------------------------------------------------------
const malformed = [
  () => ['POST', '/v1/chat/completions', '{"model": "bench", "messages": [{"role": "user", "content": "x"}'],
  () => ['POST', '/v1/chat/completions', JSON.stringify({ model: 'bench', messages: 'hello' })],
  () => ['POST', '/v1/chat/completions', JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'x' }], temperature: 'warm' })],
  () => ['POST', '/v1/chat/completions', JSON.stringify({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })],
  () => ['POST', '/v1/chat/completions', JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'x' }], max_tokens: -1 })],
  () => ['POST', '/v1/completions', '['.repeat(5000)],
  () => ['POST', '/v1/completions', 'x'.repeat(5 << 20)],  // over the 4 MiB body limit
  () => ['GET', '/v1/unknown', ''],
];

function sendRaw(method, path, body) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

// Garbage that is not HTTP, and a stream abandoned after its first bytes (a disconnect mid-request).
function sendGarbage(kind) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      if (kind === 0) s.end(Buffer.from(Array.from({ length: 512 }, () => Math.floor(Math.random() * 256))));
      else {
        const body = JSON.stringify({ model: 'bench', stream: true, max_tokens: 200, messages: [{ role: 'user', content: 'bye' }] });
        s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        s.once('data', () => s.destroy());
      }
    });
    s.on('error', () => {});
    s.on('close', () => resolve());
    setTimeout(() => { s.destroy(); resolve(); }, 5000);
  });
}

// --- the run -----------------------------------------------------------------------------------
const start = performance.now();
const deadline = start + opt.duration * 1000;
const results = [];
const bad = { sent: 0, answered4xx: 0, other: {} };
const rss = [];
let rssAfterWarmup = NaN;
const rssBefore = rssMiB();
const sampler = setInterval(() => {
  const t = (performance.now() - start) / 1000;
  rss.push([Math.round(t), Math.round(rssMiB() * 10) / 10]);
  if (Number.isNaN(rssAfterWarmup) && t >= opt.warmup) rssAfterWarmup = rssMiB();
}, 1000);

async function client(id) {
  for (let n = 0; performance.now() < deadline; n++) results.push({ ...(await streamChat(id * 1000 + n)), at: performance.now() - start });
}
async function badClient() {
  for (let n = 0; performance.now() < deadline; n++) {
    if (n % 5 === 4) await sendGarbage(n % 2);
    else {
      const status = await sendRaw(...malformed[n % malformed.length]());
      bad.sent++;
      if (status >= 400 && status < 500) bad.answered4xx++;
      else bad.other[status] = (bad.other[status] ?? 0) + 1;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

await Promise.all([...Array.from({ length: opt.clients }, (_, i) => client(i)), badClient(), badClient()]);
clearInterval(sampler);
const health = await sendRaw('GET', '/health', '');
const rssEnd = rssMiB();
server.kill('SIGTERM');
await new Promise((r) => (serverExit ? r() : server.on('exit', r)));

const pct = (xs, p) => xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN;
const measured = results.filter((r) => r.at >= opt.warmup * 1000);
const ok = measured.filter((r) => r.ok);
const ttfts = ok.map((r) => r.ttft).filter((x) => x !== null).sort((a, b) => a - b);
const summary = {
  clients: opt.clients, duration_s: opt.duration, warmup_s: opt.warmup, max_tokens: opt['max-tokens'],
  requests_total: results.length, requests_failed: results.filter((r) => !r.ok).length,
  failures: results.filter((r) => !r.ok).slice(0, 5),
  requests_per_s_after_warmup: ok.length / (opt.duration - opt.warmup),
  ttft_ms_p50: pct(ttfts, 50), ttft_ms_p99: pct(ttfts, 99),
  malformed_sent: bad.sent, malformed_answered_4xx: bad.answered4xx, malformed_other_status: bad.other,
  rss_mib_start: rssBefore, rss_mib_after_warmup: rssAfterWarmup, rss_mib_end: rssEnd,
  health_after: health, server_exit: serverExit, rss_mib_per_second: rss,
};
if (opt.json) writeFileSync(opt.json, JSON.stringify(summary, null, 1));
const { rss_mib_per_second, failures, ...brief } = summary;
console.log(JSON.stringify(brief, null, 1));
process.exit(summary.requests_failed === 0 && health === 200 && serverExit?.code === 0 ? 0 : 1);
