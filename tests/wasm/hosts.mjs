// Native host servers (`shardvec serve`) started on 127.0.0.1 for the edge
// tests: the binary of the Rust test build ($SHARDVEC_BIN, default
// $CARGO_TARGET_DIR or ~/.cache/shardvec-target, then debug/shardvec); and
// plain Node servers to put in front of them (proxies that misbehave).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export function shardvecBin() {
  const target = process.env.CARGO_TARGET_DIR ?? path.join(os.homedir(), '.cache/shardvec-target');
  const bin = process.env.SHARDVEC_BIN ?? path.join(target, 'debug/shardvec');
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} is missing: build it first (cargo test --workspace --no-run)`);
  }
  return bin;
}

/**
 * Starts `shardvec serve` over `prefix` on a free port and resolves once it
 * listens. `shards` is a list such as "0-3"; `args` are extra flags.
 * Returns `{url, stop(), kill()}`; `stop` sends SIGTERM and waits for the
 * exit, `kill` sends SIGKILL (requests in flight are cut) and does not
 * wait.
 */
export async function startHost(prefix, { shards, args = [] } = {}) {
  const localRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'shardvec-host-'));
  const argv = ['serve', '--prefix', prefix, '--listen', '127.0.0.1:0', '--local-root', localRoot, ...args];
  if (shards !== undefined) argv.push('--shards', shards);
  const proc = spawn(shardvecBin(), argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    exited.then(({ code }) => reject(new Error(`shardvec serve exited (${code}) before listening: ${stderr}`)));
  });
  return {
    url,
    exited,
    kill() {
      proc.kill('SIGKILL');
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const r = await exited;
      fs.rmSync(localRoot, { recursive: true, force: true });
      return r;
    },
  };
}

/** POSTs JSON; resolves to `{status, body}`. */
export async function postJson(url, body, headers = {}) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

/** Result ids as strings (ids may be BigInts beyond 2^53). */
export const ids = (results) => results.map((r) => String(r.id));
export const scores = (results) => results.map((r) => r.score);

/**
 * A plain HTTP server on 127.0.0.1 (a free port) for what no real host
 * does: proxies that flip between hosts, rewrite headers or requests, and
 * answers without end. `handle(req, res, body)` answers each request
 * (`body`: the request body, a Buffer). Returns `{url, close()}`.
 */
export async function startServer(handle) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      Promise.resolve(handle(req, res, Buffer.concat(chunks))).catch((e) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(e));
      });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

/**
 * Sends `req` (with `body`) on to `target` (a base URL, the same path) and
 * resolves to `{status, etag, type, body}` (`body` a Buffer).
 */
export async function forward(req, body, target) {
  const r = await fetch(`${target}${req.url}`, {
    method: req.method,
    headers: req.headers['content-type'] ? { 'content-type': req.headers['content-type'] } : {},
    body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
  });
  return {
    status: r.status,
    etag: r.headers.get('etag'),
    type: r.headers.get('content-type') ?? 'application/octet-stream',
    body: Buffer.from(await r.arrayBuffer()),
  };
}

/** Writes a forwarded answer to `res`; `etag` replaces its ETag (null: none). */
export function reply(res, answer, etag = answer.etag) {
  const headers = { 'content-type': answer.type };
  if (etag !== null) headers.etag = etag;
  res.writeHead(answer.status, headers).end(answer.body);
}
