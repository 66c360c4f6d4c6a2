import { describe, expect, it } from 'vitest';
import { splitDocument } from '../../src/documents/chunking.js';
import { decodeDocument, documentTypeOf } from '../../src/documents/input.js';

const md = { maxChars: 200, overlap: 30, markdown: true };
const bodyOf = (text: string) => text.slice(text.indexOf('\n\n') + 2);

describe('splitDocument', () => {
  it('opens a section per heading and keeps the heading path in each chunk', () => {
    const chunks = splitDocument(
      '# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n### Linux\n\nUse apt.\n\n## Use\n\nCall it.\n',
      { ...md, title: 'Manual' },
    );
    expect(chunks.map((c) => c.text)).toEqual([
      'Manual › Guide\n\nIntro.',
      'Manual › Guide › Install\n\nRun it.',
      'Manual › Guide › Install › Linux\n\nUse apt.',
      'Manual › Guide › Use\n\nCall it.',
    ]);
    expect(chunks[2].headings).toEqual(['Manual', 'Guide', 'Install', 'Linux']);
  });

  it('does not read headings inside fenced code, and reads plain text as paragraphs only', () => {
    const text = '# Real\n\n```\n# comment\n```\n\nAfter.';
    expect(splitDocument(text, md).map((c) => c.text)).toEqual(['Real\n\n```\n# comment\n```\n\nAfter.']);
    expect(splitDocument(text, { ...md, markdown: false }).map((c) => c.text)).toEqual([
      '# Real\n\n```\n# comment\n```\n\nAfter.',
    ]);
  });

  it('bounds every chunk, cuts long paragraphs between sentences and overlaps within a section', () => {
    const sentences = Array.from({ length: 30 }, (_, i) => `Sentence ${i} is here.`).join(' ');
    const chunks = splitDocument(`# Long\n\n${sentences}`, md);
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks) expect(c.text.length).toBeLessThanOrEqual(md.maxChars);
    for (let i = 1; i < chunks.length; i++) {
      const previous = bodyOf(chunks[i - 1].text);
      const [carried] = bodyOf(chunks[i].text).split('\n');
      expect(carried.length).toBeLessThanOrEqual(md.overlap);
      expect(previous.endsWith(carried)).toBe(true);
    }
    // Every sentence survives, in order.
    const seen = chunks.flatMap((c) => [...c.text.matchAll(/Sentence (\d+)/g)].map((m) => Number(m[1])));
    expect([...new Set(seen)]).toEqual([...Array(30).keys()]);
  });

  it('cuts a word longer than a chunk without splitting a surrogate pair', () => {
    const word = '😀'.repeat(300);
    const chunks = splitDocument(word, { maxChars: 200, overlap: 0, markdown: false });
    expect(chunks.map((c) => c.text).join('')).toBe(word);
    for (const c of chunks) {
      expect(c.text.length).toBeLessThanOrEqual(200);
      expect(/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/.test(c.text)).toBe(false);
    }
  });

  it('stays bounded with tiny bounds (chunks capped by MAX_TEXT_BYTES / 3)', () => {
    for (const maxChars of [1, 5, 33]) {
      const chunks = splitDocument('# Heading\n\nSome words here. And more words after them.', {
        maxChars,
        overlap: Math.floor(maxChars / 2),
        markdown: true,
      });
      expect(chunks.length).toBeGreaterThan(0);
      for (const c of chunks)
        expect(c.text.length, String(maxChars)).toBeLessThanOrEqual(Math.max(maxChars, 2));
    }
  });

  it('keeps a document of headings only, and is deterministic', () => {
    expect(splitDocument('# A\n## B\n', md).map((c) => c.text)).toEqual(['# A\n## B']);
    const text = `# X\n\n${'word '.repeat(400)}`;
    expect(splitDocument(text, md)).toEqual(splitDocument(text, md));
  });
});

describe('document input', () => {
  it('accepts text/plain and text/markdown in UTF-8 only', () => {
    expect(documentTypeOf('text/markdown; charset=UTF-8')).toBe('text/markdown');
    expect(documentTypeOf('text/plain')).toBe('text/plain');
    for (const bad of [undefined, 'application/json', 'text/html', 'text/plain; charset=latin1']) {
      expect(() => documentTypeOf(bad), String(bad)).toThrow(/text\/plain or text\/markdown/);
    }
  });

  it('refuses empty, blank, invalid UTF-8 and NUL bodies', () => {
    expect(decodeDocument(Buffer.from('\uFEFFhello'))).toBe('\uFEFFhello');
    for (const bad of [
      Buffer.alloc(0),
      Buffer.from(' \n'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('a\u0000b'),
    ]) {
      expect(() => decodeDocument(bad)).toThrow();
    }
  });
});
