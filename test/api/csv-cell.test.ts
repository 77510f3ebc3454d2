/**
 * Formula-injection protection for CSV cells (OWASP "CSV Injection"): what a spreadsheet
 * would run as a formula is turned into text, everything else is left exactly as it was.
 */
import { neutraliseFormula } from '../../src/api/csv-cell';

describe('neutraliseFormula', () => {
  it.each([
    ['=HYPERLINK("http://evil.example","click")', `'=HYPERLINK("http://evil.example","click")`],
    ['+60 12-345 6789', `'+60 12-345 6789`],
    ['-2+3', `'-2+3`],
    ['@SUM(A1:A9)', `'@SUM(A1:A9)`],
    ['\t=1+1', `'\t=1+1`],
    ['\r=1+1', `'\r=1+1`],
  ])('prefixes a single quote to a cell starting with a formula character: %j', (cell, safe) => {
    expect(neutraliseFormula(cell)).toBe(safe);
  });

  it.each([
    'Ana Lim',
    'Lim, Ana "Annie"\nApt 3',
    'a=b',
    'WB-100001',
    ' =1+1',
    "'already quoted",
    '',
    '2026-10-01T08:00:00.000Z',
  ])('leaves a cell that does not start with one unchanged: %j', (cell) => {
    expect(neutraliseFormula(cell)).toBe(cell);
  });
});
