// Helpers of the filtered-search tests, written from the filter language's
// documentation (core/src/filter/mod.rs) and not from its code: an
// independent evaluator of filters in plain JS, a seeded synthetic dataset
// (known vectors and payloads) built into a snapshot by the native
// `shardvec build`, exact brute force over it, and a fetch wrapper that
// records every request the wasm package makes.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { shardvecBin } from './hosts.mjs';

// ---- the filter language, evaluated independently ------------------------------

const isScalar = (v) => v === null || ['boolean', 'number', 'string', 'bigint'].includes(typeof v);
const kind = (v) => (v === null ? 'null' : typeof v === 'bigint' ? 'number' : typeof v);

/** Equality of two scalars: same type, same value (numbers as numbers). */
function same(a, b) {
  if (kind(a) !== kind(b)) return false;
  if (kind(a) === 'number') return Number(a) === Number(b);
  return a === b;
}

/** Order of two scalars of the same ordered type (numbers, or strings by
 * their UTF-8 bytes); `null` when they do not compare. */
function order(a, b) {
  if (kind(a) === 'number' && kind(b) === 'number') return Math.sign(Number(a) - Number(b));
  if (typeof a === 'string' && typeof b === 'string') return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return null;
}

/** The value at a dotted path, walking objects only. */
function lookup(payload, dotted) {
  let at = payload;
  for (const seg of dotted.split('.')) {
    if (at === null || typeof at !== 'object' || Array.isArray(at) || !Object.hasOwn(at, seg)) return { present: false };
    at = at[seg];
  }
  return { present: true, value: at };
}

/** One operator on a field: `any` of its scalar values (the elements of an
 * array, or the value itself) satisfies the positive form; `$ne`/`$nin`
 * negate `$eq`/`$in`; missing fields satisfy only the negations. */
function condition(op, arg, field) {
  if (op === '$exists') return field.present === arg;
  if (op === '$not') return !operators(arg, field);
  const values = !field.present ? [] : Array.isArray(field.value) ? field.value.filter(isScalar) : isScalar(field.value) ? [field.value] : [];
  const hit = (v) => {
    switch (op) {
      case '$eq':
      case '$ne':
        return same(arg, v);
      case '$in':
      case '$nin':
        return arg.some((a) => same(a, v));
      case '$gt':
        return order(v, arg) === 1;
      case '$gte':
        return [0, 1].includes(order(v, arg));
      case '$lt':
        return order(v, arg) === -1;
      case '$lte':
        return [0, -1].includes(order(v, arg));
      default:
        throw new Error(`the test evaluator has no ${op}`);
    }
  };
  const any = values.some(hit);
  return op === '$ne' || op === '$nin' ? !any : any;
}

const isOperators = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => k.startsWith('$'));

function operators(ops, field) {
  return Object.entries(ops).every(([op, arg]) => condition(op, arg, field));
}

/** Whether the record `id`, `payload` matches `filter` (a filter object). */
export function matchesJs(filter, id, payload) {
  return Object.entries(filter).every(([key, v]) => {
    if (key === '$and') return v.every((f) => matchesJs(f, id, payload));
    if (key === '$or') return v.some((f) => matchesJs(f, id, payload));
    if (key === '$not') return !matchesJs(v, id, payload);
    const field = key === '$id' ? { present: true, value: id } : lookup(payload ?? undefined, key);
    return isOperators(v) ? operators(v, field) : condition('$eq', v, field);
  });
}

// ---- a synthetic dataset with known vectors -------------------------------------------

/** mulberry32: a small seeded PRNG in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const TENANTS = ['acme', 'globex', 'hooli', 'initech', 'stark', 'umbrella', 'wayne'];

/**
 * `n` float32 vectors of dimension `dim` in `blobs` Gaussian blobs, with
 * mixed ids (`doc-N` for every third record, else N) and, for 4 records in
 * 5, a payload `{tenant, label, i, meta: {lang}, tags}` (tags: an array,
 * absent on some); the fifth record has none.
 */
export function syntheticRecords({ n = 720, dim = 16, blobs = 6, seed = 11 } = {}) {
  const rand = prng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const centers = Array.from({ length: blobs }, () => Array.from({ length: dim }, () => (rand() * 2 - 1) * 3));
  return Array.from({ length: n }, (_, i) => {
    const c = centers[i % blobs];
    const vector = c.map((x) => Math.fround(x + gauss() * 0.6));
    const r = { id: i % 3 === 0 ? `doc-${i}` : i, vector };
    if (i % 5 !== 4) {
      r.payload = { tenant: TENANTS[Math.floor(rand() * TENANTS.length)], label: Math.floor(rand() * 5), i, meta: { lang: rand() < 0.5 ? 'en' : 'de' } };
      if (i % 7 !== 0) r.payload.tags = ['t' + Math.floor(rand() * 4), 't' + Math.floor(rand() * 4)];
    }
    return r;
  });
}

/** Writes `records` as JSON Lines and builds a snapshot from them with the
 * native writer (`shardvec build`) in a fresh folder; returns its path. */
export function buildSnapshot(records, args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardvec-filter-'));
  const input = path.join(dir, 'records.jsonl');
  fs.writeFileSync(input, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const prefix = path.join(dir, 'snapshot');
  execFileSync(shardvecBin(), ['build', '--input', input, '--prefix', prefix, '--seed', '5', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return { dir, prefix };
}

/** Euclidean distance (sqlite-vec's `l2` score), in float64. */
export function euclid(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/** The `k` best of `hits` (`{id, score}`), by score, ties in input order. */
export function topK(hits, k) {
  return hits
    .map((h, i) => [h, i])
    .sort((a, b) => a[0].score - b[0].score || a[1] - b[1])
    .slice(0, k)
    .map(([h]) => h);
}

/** `got` hits equal the expected ones: the same count, scores equal within
 * `tol` relative, and the same ids except inside groups of tied scores. */
export function sameHits(what, got, want, tol = 1e-5) {
  assert.equal(got.length, want.length, `${what}: count (${got.map((h) => h.id)} vs ${want.map((h) => h.id)})`);
  const close = (a, b) => Math.abs(a - b) <= tol * Math.max(Math.abs(a), Math.abs(b), 1e-6);
  got.forEach((g, i) => {
    const w = want[i];
    assert.ok(close(g.score, w.score), `${what}: score ${i}: ${g.score} vs ${w.score}`);
    if (String(g.id) !== String(w.id)) {
      const tied = want.filter((r) => close(r.score, w.score)).map((r) => String(r.id));
      assert.ok(tied.length > 1 && tied.includes(String(g.id)), `${what}: hit ${i} is ${g.id}, expected ${w.id}`);
    }
  });
}

// ---- requests the wasm package makes ----------------------------------------------------

/** Wraps the global `fetch` (which the wasm package calls) so that every
 * request is recorded: `{method, url, body}` (body parsed from JSON). */
export function recordFetches() {
  const real = globalThis.fetch;
  const log = [];
  globalThis.fetch = (input, init = {}) => {
    let body;
    if (typeof init.body === 'string') {
      try {
        body = JSON.parse(init.body);
      } catch {
        body = init.body;
      }
    }
    log.push({ method: init.method ?? 'GET', url: String(input), body });
    return real(input, init);
  };
  return log;
}
