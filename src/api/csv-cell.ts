/**
 * CSV injection (OWASP "CSV Injection"): a spreadsheet opening an export runs any cell that
 * starts with `=`, `+`, `-` or `@` as a formula, and a leading tab or carriage return can
 * hide such a start. Text cells starting with one of them get a leading single quote, which
 * spreadsheets show as text and never evaluate. Numbers are written as numbers, untouched
 * (a refund of -500 stays -500). Quoting commas, quotes and newlines is the CSV library's job.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

export function neutraliseFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}
