/**
 * SHA-256 of a schema's canonical JSON: object keys sorted, except inside `properties`, whose
 * order decides the order the grammar generates properties in (so two schemas that differ only
 * there get different grammars). Call after checkSchemaShape, which bounds the depth.
 */
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown, keepOrder = false): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const keys = Object.keys(value);
  if (!keepOrder) keys.sort();
  const obj = value as Record<string, unknown>;
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k], k === 'properties' && !keepOrder)}`).join(',')}}`;
}

export function schemaHash(schema: unknown, kind = 'json_schema'): string {
  return createHash('sha256').update(kind).update('\0').update(canonicalJson(schema)).digest('hex');
}
