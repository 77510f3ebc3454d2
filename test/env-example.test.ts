import fs from 'node:fs';
import path from 'node:path';

describe('.env.example', () => {
  it('documents every variable src/config reads', () => {
    const dir = path.join(__dirname, '../src/config');
    const source = fs
      .readdirSync(dir)
      .map((file) => fs.readFileSync(path.join(dir, file), 'utf8'))
      .join('\n');
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
