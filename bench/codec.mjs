// Codec micro-benchmark: @picop/codec against a naive encoder/decoder written the obvious way
// (signature compare, toString, split, a Map; no validation), measured in the same run.
import { decodeHeader, encodeHeader, HeaderDecoder } from '@picop/codec';
import { do_not_optimize } from 'mitata';
import { fmtOps, fmtRatio, measure, table } from './lib.mjs';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function naiveEncode(fields) {
  const text = Object.entries(fields)
    .map(([k, v]) => `${k}:${v}`)
    .join('\r\n');
  const body = Buffer.from(text);
  return Buffer.concat([SIG, Buffer.from([1, body.length >> 8, body.length & 0xff]), body]);
}

function naiveDecode(buf) {
  if (!buf.subarray(0, 12).equals(SIG) || buf[12] !== 1) throw new Error('not PiCoP');
  const n = buf.readUInt16BE(13);
  const fields = new Map();
  for (const line of buf.toString('ascii', 15, 15 + n).split('\r\n')) {
    const i = line.indexOf(':');
    fields.set(line.slice(0, i).toLowerCase(), line.slice(i + 1));
  }
  return { fields, byteLength: 15 + n };
}

const HEADERS = {
  '1 field': { 'Env-Id': 'feature-1' },
  '5 fields': {
    'Env-Id': 'feature-1234-checkout-redesign',
    Tenant: 'acme-corporation-eu-west-1',
    'X-Request-Source': 'edge-gateway.preview.internal',
    'X-Routing-Key': 'shard-0042/replica-b/zone-europe-west1-c',
    'X-Debug': 'trace=on;sample=1.0;owner=platform-team',
  },
};

const cases = {};
for (const [label, fields] of Object.entries(HEADERS)) {
  const wire = encodeHeader(fields);
  if (!naiveEncode(fields).equals(wire)) throw new Error('naive encoder disagrees');
  // Application data after the header, as a first TCP chunk would carry it.
  const chunk = Buffer.concat([wire, Buffer.from('*1\r\n$4\r\nPING\r\n')]);
  cases[`decode ${label}: @picop/codec`] = () => do_not_optimize(decodeHeader(chunk));
  cases[`decode ${label}: HeaderDecoder`] = () => do_not_optimize(new HeaderDecoder().push(chunk));
  cases[`decode ${label}: naive`] = () => do_not_optimize(naiveDecode(chunk));
  cases[`encode ${label}: @picop/codec`] = () => do_not_optimize(encodeHeader(fields));
  cases[`encode ${label}: naive`] = () => do_not_optimize(naiveEncode(fields));
}

const ns = await measure(cases);
const rows = [];
for (const label of Object.keys(HEADERS)) {
  const bytes = encodeHeader(HEADERS[label]).length;
  for (const [op, ours] of [
    ['decode', 'decodeHeader'],
    ['decode', 'HeaderDecoder'],
    ['encode', 'encodeHeader'],
  ]) {
    const mine = ns.get(
      `${op} ${label}: ${ours === 'HeaderDecoder' ? 'HeaderDecoder' : '@picop/codec'}`,
    );
    const naive = ns.get(`${op} ${label}: naive`);
    rows.push([
      `${ours}, ${label} (${bytes} B)`,
      fmtOps(1e9 / mine),
      mine.toFixed(0),
      fmtOps(1e9 / naive),
      naive.toFixed(0),
      fmtRatio(naive / mine),
    ]);
  }
}
table(
  `codec (${process.version}, one run; ratio = our ops/s / naive ops/s)`,
  ['operation', 'ops/s', 'ns/op', 'naive ops/s', 'naive ns/op', 'ratio'],
  rows,
);
