/**
 * Collects named GBNF rules. Identical bodies share one rule, so a schema that repeats a shape
 * (the same enum in ten properties) costs one rule, and `rules` stays an honest count for the
 * size limits.
 */
import { InferFluxError } from '../../errors.js';

export class GbnfBuilder {
  private readonly bodies = new Map<string, string>();
  private readonly byBody = new Map<string, string>();
  private readonly reserved = new Set<string>();

  constructor(
    private readonly maxRules: number,
    private readonly param: string,
  ) {}

  get size(): number {
    return this.bodies.size;
  }

  /** A rule with this body; returns its name (an existing one if the body is known). */
  rule(hint: string, body: string): string {
    const known = this.byBody.get(body);
    if (known) return known;
    const name = this.reserve(hint);
    this.define(name, body);
    return name;
  }

  /** A fresh name for a rule defined later (recursive references). */
  reserve(hint: string): string {
    const base = hint.replace(/[^a-zA-Z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'r';
    let name = base;
    for (let i = 2; this.reserved.has(name) || name === 'root'; i++) name = `${base}-${i}`;
    this.reserved.add(name);
    return name;
  }

  define(name: string, body: string): void {
    this.bodies.set(name, body);
    if (!this.byBody.has(body)) this.byBody.set(body, name);
    if (this.bodies.size > this.maxRules) {
      throw new InferFluxError('invalid_request', `The schema needs more than ${this.maxRules} grammar rules; simplify it.`, {
        param: this.param,
      });
    }
  }

  render(rootBody: string): string {
    const lines = [`root ::= ${rootBody}`];
    for (const [name, body] of this.bodies) lines.push(`${name} ::= ${body}`);
    return lines.join('\n') + '\n';
  }
}
