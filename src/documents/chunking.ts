/**
 * Splitting a document into chunks by its structure, each small enough to embed well and to read
 * as one memory:
 *
 * - Markdown: ATX headings (`#` … `######`) open sections (fenced code blocks are never read as
 *   headings); each chunk carries its section's heading path ("Guide › Install › Linux") as its
 *   first line, so a chunk is understood, found and embedded with the context it came from.
 * - Inside a section (and in plain text, one section without headings): paragraphs (blocks
 *   separated by blank lines) are packed into chunks up to the size bound; a paragraph too long
 *   for one chunk is cut between sentences, and a sentence too long between words (or, lacking
 *   spaces, anywhere but inside a surrogate pair).
 * - Overlap: a chunk that continues a section begins with the last `overlap` characters (from a
 *   word boundary) of the previous chunk, so a sentence cut at a chunk border is found from
 *   either side. Chunks never overlap across sections: a heading is a clean break.
 *
 * Every chunk, heading line included, is at most `maxChars` characters. Splitting is pure and
 * deterministic: the same text and options give the same chunks (a job that runs twice agrees
 * with itself).
 */

export interface ChunkOptions {
  maxChars: number;
  overlap: number;
  /** Markdown structure is read only for text/markdown. */
  markdown: boolean;
  /** The document's title: the root of every heading path when given. */
  title?: string;
}

export interface Chunk {
  /** The memory's text: the heading path line (when there is one), a blank line, the body. */
  text: string;
  /** Titles of the sections it lies in, outermost first. */
  headings: string[];
}

interface Section {
  headings: string[];
  blocks: string[];
}

const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/;
const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const PATH_SEPARATOR = ' › ';

/** Line endings normalised, a byte-order mark dropped. */
export const normaliseDocument = (text: string) => text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');

/** Sections with their heading paths and their paragraphs (code fences kept whole). */
function sectionsOf(text: string, markdown: boolean, title: string | undefined): Section[] {
  const root = title?.trim() ? [title.trim()] : [];
  const sections: Section[] = [{ headings: root, blocks: [] }];
  const stack: { level: number; title: string }[] = [];
  let paragraph: string[] = [];
  let fence: string | null = null;
  const current = () => sections[sections.length - 1];
  const endParagraph = () => {
    const block = paragraph.join('\n').trim();
    if (block) current().blocks.push(block);
    paragraph = [];
  };
  for (const line of text.split('\n')) {
    if (markdown) {
      const f = FENCE.exec(line);
      if (fence !== null) {
        paragraph.push(line);
        if (f && f[1][0] === fence[0] && f[1].length >= fence.length) fence = null;
        continue;
      }
      if (f) {
        endParagraph();
        fence = f[1];
        paragraph.push(line);
        continue;
      }
      const h = HEADING.exec(line);
      if (h) {
        endParagraph();
        const level = h[1].length;
        while (stack.length > 0 && stack[stack.length - 1].level >= level) stack.pop();
        const heading = h[2].trim();
        if (heading) stack.push({ level, title: heading });
        sections.push({ headings: [...root, ...stack.map((s) => s.title)], blocks: [] });
        continue;
      }
    }
    if (line.trim() === '') endParagraph();
    else paragraph.push(line);
  }
  endParagraph();
  return sections;
}

/** Cuts `text` into pieces of at most `max` characters at the best boundary available. */
function cut(text: string, max: number): string[] {
  if (text.length <= max) return [text];
  const sentences = text.split(/(?<=[.!?…。])\s+/).filter((s) => s.length > 0);
  if (sentences.length > 1) return pack(sentences, max, ' ');
  const pieces: string[] = [];
  let rest = text;
  while (rest.length > max) {
    let at = rest.lastIndexOf(' ', max);
    if (at < max / 2) at = max;
    // Never split a surrogate pair.
    if (at === max && /[\uD800-\uDBFF]/.test(rest[at - 1])) at -= 1;
    // A bound below one pair still moves on (only absurdly small bounds get here).
    if (at < 1) at = 2;
    pieces.push(rest.slice(0, at).trim());
    rest = rest.slice(at).trimStart();
  }
  if (rest) pieces.push(rest);
  return pieces.filter((p) => p.length > 0);
}

/** Joins parts into as few pieces of at most `max` characters as their order allows. */
function pack(parts: string[], max: number, separator: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const part of parts.flatMap((p) => cut(p, max))) {
    const joined = current ? `${current}${separator}${part}` : part;
    if (joined.length <= max) {
      current = joined;
    } else {
      if (current) out.push(current);
      current = part;
    }
  }
  if (current) out.push(current);
  return out;
}

/** The last `overlap` characters of a chunk body, starting at a word. */
function tailOf(body: string, overlap: number): string {
  if (overlap <= 0 || body.length <= overlap) return overlap <= 0 ? '' : body;
  let tail = body.slice(body.length - overlap);
  const space = tail.search(/\s/);
  if (space >= 0 && space < tail.length - 1) tail = tail.slice(space + 1);
  if (/^[\uDC00-\uDFFF]/.test(tail)) tail = tail.slice(1);
  return tail.trim();
}

/** The heading line of a chunk, shortened so that it leaves most of the chunk to the body. */
function headingLine(headings: string[], maxChars: number): string {
  const limit = Math.floor(maxChars / 4);
  // Too small a chunk for context: the body gets it all.
  if (headings.length === 0 || limit < 8) return '';
  const line = headings.join(PATH_SEPARATOR).replace(/\s+/g, ' ');
  return line.length <= limit ? line : `…${line.slice(line.length - limit + 1)}`;
}

export function splitDocument(raw: string, opts: ChunkOptions): Chunk[] {
  const text = normaliseDocument(raw);
  let sections = sectionsOf(text, opts.markdown, opts.title).filter((s) => s.blocks.length > 0);
  // Headings and nothing else: the headings are the content.
  if (sections.length === 0 && text.trim()) sections = [{ headings: [], blocks: [text.trim()] }];
  const chunks: Chunk[] = [];
  for (const section of sections) {
    const heading = headingLine(section.headings, opts.maxChars);
    const prefix = heading ? `${heading}\n\n` : '';
    const budget = opts.maxChars - prefix.length;
    const overlap = Math.min(opts.overlap, Math.floor(budget / 2));
    // Room is left for the overlap carried into every chunk but the first.
    const bodies = pack(section.blocks, Math.max(1, budget - (overlap > 0 ? overlap + 1 : 0)), '\n\n');
    let previous = '';
    for (const body of bodies) {
      const carried = previous ? tailOf(previous, overlap) : '';
      const full = carried ? `${carried}\n${body}` : body;
      chunks.push({ text: `${prefix}${full}`, headings: section.headings });
      previous = body;
    }
  }
  return chunks;
}
