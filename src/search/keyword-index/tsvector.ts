/**
 * Reads PostgreSQL's text form of a tsvector (`'caroline':1 'group':5,9 'it''s':3`) and hands each
 * lexeme to `out` with its number of positions (1 when the vector has none), which is what the
 * SQL BM25 counts as the term frequency. Lexemes are quoted: `''` is a quote, `\x` is x.
 */
export function parseTsvector(text: string, out: (lexeme: string, count: number) => void): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    while (i < n && text.charCodeAt(i) === 32) i++;
    if (i >= n) break;
    i++; // opening quote
    let lexeme = '';
    let start = i;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 39) {
        if (text.charCodeAt(i + 1) === 39) {
          lexeme += text.slice(start, i + 1);
          i += 2;
          start = i;
          continue;
        }
        lexeme += text.slice(start, i);
        i++;
        break;
      }
      if (c === 92) {
        lexeme += text.slice(start, i) + text.charAt(i + 1);
        i += 2;
        start = i;
        continue;
      }
      if (i >= n) throw new Error('unterminated lexeme in tsvector text');
      i++;
    }
    let count = 1;
    if (text.charCodeAt(i) === 58) {
      i++;
      while (i < n && text.charCodeAt(i) !== 32) {
        if (text.charCodeAt(i) === 44) count++;
        i++;
      }
    }
    out(lexeme, count);
  }
}
