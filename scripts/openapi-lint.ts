/**
 * The OpenAPI document the API serves, checked with Spectral against the OWASP API security
 * ruleset as .spectral.yaml (at the root) configures it. `npm test` runs the check on the
 * real app (test/api/openapi-lint.test.ts); `npm run lint:openapi` prints every finding
 * without Postgres or Temporal running (the app connects to both lazily and serving the
 * document needs neither) and exits 1 when there is an error.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Document, Ruleset, Spectral, type RulesetDefinition } from '@stoplight/spectral-core';
import { Json } from '@stoplight/spectral-parsers';
import owasp from '@stoplight/spectral-owasp-ruleset';
import { parse } from 'yaml';

export const RULESET_PATH = path.resolve(__dirname, '..', '.spectral.yaml');

/** Rulesets .spectral.yaml may extend, by the package name Spectral's CLI resolves too. */
const KNOWN_RULESETS: Record<string, unknown> = { '@stoplight/spectral-owasp-ruleset': owasp };

const SEVERITY = ['error', 'warn', 'info', 'hint'] as const;

export interface Finding {
  rule: string;
  severity: (typeof SEVERITY)[number];
  /** JSON pointer into the document, e.g. `/paths/~1v1~1orders/post/responses/201`. */
  where: string;
  message: string;
}

const readRulesetFile = () =>
  parse(fs.readFileSync(RULESET_PATH, 'utf8')) as {
    extends?: unknown;
    'x-free-text'?: Record<string, string>;
  };

/** The free-text fields .spectral.yaml allows without format or pattern, each with its reason. */
export function freeTextFields(): Record<string, string> {
  return readRulesetFile()['x-free-text'] ?? {};
}

function loadRuleset(): Ruleset {
  const definition = readRulesetFile();
  const names = [definition.extends ?? []].flat() as string[];
  const unknown = names.filter((name) => !(name in KNOWN_RULESETS));
  if (unknown.length > 0) {
    throw new Error(
      `.spectral.yaml extends ${unknown.join(', ')}: add it to KNOWN_RULESETS in ${__filename}`,
    );
  }
  definition.extends = names.map((name) => KNOWN_RULESETS[name]);
  return new Ruleset(definition as RulesetDefinition, { source: RULESET_PATH });
}

const pointer = (segments: readonly (string | number)[]): string =>
  segments.map((segment) => `/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');

/** Every finding Spectral reports on the document, as the ruleset file configures the rules. */
export async function lintOpenApi(document: unknown): Promise<Finding[]> {
  const spectral = new Spectral();
  spectral.setRuleset(loadRuleset());
  // Named as if it lay beside the ruleset, so the ruleset's `overrides` address it as `openapi.json#…`.
  const source = path.join(path.dirname(RULESET_PATH), 'openapi.json');
  const results = await spectral.run(new Document(JSON.stringify(document, null, 2), Json, source));
  return results.map((result) => ({
    rule: String(result.code),
    severity: SEVERITY[result.severity] ?? 'hint',
    where: pointer(result.path),
    message: result.message,
  }));
}

/** Findings counted by severity and by rule, for a summary line. */
export function countFindings(findings: readonly Finding[]): {
  bySeverity: Record<string, number>;
  byRule: Record<string, number>;
} {
  const bySeverity: Record<string, number> = {};
  const byRule: Record<string, number> = {};
  for (const { rule, severity } of findings) {
    bySeverity[severity] = (bySeverity[severity] ?? 0) + 1;
    byRule[`${severity} ${rule}`] = (byRule[`${severity} ${rule}`] ?? 0) + 1;
  }
  return { bySeverity, byRule };
}
