import fs from 'node:fs';
import path from 'node:path';

describe('.env.example', () => {
  it('documents every variable src/config.ts reads', () => {
    const source = fs.readFileSync(path.join(__dirname, '../src/config.ts'), 'utf8');
    const read = new Set(
      [
        ...source.matchAll(/r\.(?:string|optional|int|port|bool|duration|oneOf|url|has)\('([A-Z0-9_]+)'/g),
      ].map((m) => m[1]),
    );
    read.delete('XDG_CACHE_HOME');
    const documented = fs.readFileSync(path.join(__dirname, '../.env.example'), 'utf8');
    const missing = [...read].filter((name) => !new RegExp(`^#?\\s*${name}=`, 'm').test(documented));
    expect(read.size).toBeGreaterThan(30);
    expect(missing).toEqual([]);
  });
});
