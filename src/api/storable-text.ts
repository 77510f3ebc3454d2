/**
 * Text Postgres can store. Two kinds of string pass JSON and every schema's length and type
 * and are still refused by the database, so without this check a request carrying one would
 * answer 500 (or, on a write that reaches a workflow first, leave it retrying a write that can
 * never succeed):
 *
 * - the NUL character (U+0000, `\u0000` in JSON): `text` refuses it (22021) and `jsonb` too
 *   (22P05);
 * - a lone surrogate half (`\ud83d` alone, e.g. an emoji cut in two by a client truncating a
 *   field): `jsonb` refuses it (22P02), and `text` would store U+FFFD in its place.
 *
 * Every request's body, query string and path parameters are checked after their schema
 * (./app.ts wraps each validator), so such a value answers 400 VALIDATION_FAILED naming the
 * field, like any other invalid value.
 */

import type { ErrorObject, ValidateFunction } from 'ajv';

/** Why `text` cannot be stored, or null when it can. */
export function unstorableText(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain the NUL character (U+0000)';
  if (!text.isWellFormed()) {
    return 'must be well-formed Unicode (it has half of a surrogate pair, e.g. an emoji cut in two)';
  }
  return null;
}

export interface TextIssue {
  /** JSON pointer of the value (or of the object whose key it is), as Ajv reports paths. */
  instancePath: string;
  keyword: 'storableText';
  message: string;
  params: Record<string, never>;
}

const pointerPart = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** The first string in `value` (object keys included) that cannot be stored, or null. */
export function findUnstorableText(value: unknown, path = ''): TextIssue | null {
  if (typeof value === 'string') {
    const message = unstorableText(value);
    return message === null ? null : { instancePath: path, keyword: 'storableText', message, params: {} };
  }
  if (typeof value !== 'object' || value === null) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const issue = findUnstorableText(value[i], `${path}/${i}`);
      if (issue) return issue;
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    const keyProblem = unstorableText(key);
    if (keyProblem !== null) {
      return {
        instancePath: path,
        keyword: 'storableText',
        message: `has a field name that ${keyProblem}`,
        params: {},
      };
    }
    const issue = findUnstorableText((value as Record<string, unknown>)[key], `${path}/${pointerPart(key)}`);
    if (issue) return issue;
  }
  return null;
}

/**
 * `validate` (an Ajv validator of one part of the request) followed by the storable-text
 * check, reporting in Ajv's shape (`errors`, false), so Fastify answers both alike. Fastify
 * hands Ajv the part's parent (so a root value can be coerced) when the validator carries
 * Ajv's `schemaEnv`: the wrapper carries it on and passes that context through.
 */
export function withStorableText(validate: ValidateFunction): ValidateFunction {
  const checked = ((data: unknown, context?: Parameters<ValidateFunction>[1]) => {
    if (!validate(data, context)) {
      checked.errors = validate.errors;
      return false;
    }
    const value = context?.parentData
      ? (context.parentData as Record<string | number, unknown>)[context.parentDataProperty!]
      : data;
    const issue = findUnstorableText(value);
    checked.errors = issue === null ? null : [issue as unknown as ErrorObject];
    return issue === null;
  }) as ValidateFunction;
  Object.assign(checked, { schema: validate.schema, schemaEnv: validate.schemaEnv });
  return checked;
}
