/**
 * No emoji in the app's sources (app/, components/): an emoji needs an emoji font, and where none
 * is installed (many Linux desktops, headless Chromium) it renders as an empty box. Icons are the
 * inline SVGs of components/icons.tsx. Typography (— … · ’ →) is fine and stays allowed.
 */
import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCANNED = ['app', 'components'];
const EXTENSIONS = new Set(['.ts', '.tsx', '.js', '.jsx', '.css', '.md', '.json']);

/** Pictographs, dingbats and symbols that browsers draw from an emoji font, and the emoji selector. */
const EMOJI = /[\u{1F000}-\u{1FAFF}\u{2600}-\u{27BF}\u{2B00}-\u{2BFF}\u{2300}-\u{23FF}\u{FE0F}]/u;

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files = await Promise.all(
    entries.map((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return sources(full);
      return Promise.resolve(EXTENSIONS.has(path.extname(entry.name)) ? [full] : []);
    }),
  );
  return files.flat();
}

describe('UI sources › no emoji', () => {
  it('recognises emoji and lets typography through', () => {
    for (const emoji of ['🔒', '💬', '♥', '♡', '⭐', '⚠️', '✅', '⏳', '🔔']) expect(EMOJI.test(emoji), emoji).to.equal(true);
    for (const text of ['—', '–', '…', '·', '’', '“”', '→', '×', 'café']) expect(EMOJI.test(text), text).to.equal(false);
  });

  it('finds none in app/ and components/', async () => {
    const files = (await Promise.all(SCANNED.map((dir) => sources(path.join(ROOT, dir))))).flat();
    expect(files.length).to.be.above(20); // the scan did look at the sources
    const found: string[] = [];
    for (const file of files) {
      const lines = (await readFile(file, 'utf8')).split('\n');
      lines.forEach((line, i) => {
        const match = EMOJI.exec(line);
        if (match) found.push(`${path.relative(ROOT, file)}:${i + 1}: ${match[0]} in ${line.trim().slice(0, 80)}`);
      });
    }
    expect(found, found.join('\n')).to.deep.equal([]);
  });
});
