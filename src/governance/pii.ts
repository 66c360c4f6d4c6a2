/**
 * PII detection and redaction. Detection finds what a pattern can find reliably (emails, phone
 * numbers, card numbers that pass Luhn, IBANs that pass mod-97) and reports where; everything
 * else (names, health, custom flags) is flagged by callers and cannot be located in the text.
 *
 * Every pattern runs in linear time on any input: matches may only start where a token starts
 * (checked by a lookbehind), and no repeated group can split the same characters two ways.
 */

export type PatternFlag = 'email' | 'phone' | 'card' | 'iban';

export interface PiiSpan {
  start: number;
  end: number;
  flag: string;
}

export interface PiiDetection {
  /** Distinct flags found, sorted. */
  flags: string[];
  /** Non-overlapping spans, by start. */
  spans: PiiSpan[];
}

/** The flags `detectPii` can locate in a text. */
export const PATTERN_FLAGS: readonly PatternFlag[] = ['email', 'phone', 'card', 'iban'];

/** What a caller-supplied flag must look like. */
export const PII_FLAG = /^[a-z][a-z0-9_-]{0,31}$/;

const PLACEHOLDER: Record<PatternFlag, string> = {
  email: '[EMAIL]',
  phone: '[PHONE]',
  card: '[CARD]',
  iban: '[IBAN]',
};

const isPatternFlag = (flag: string): flag is PatternFlag =>
  (PATTERN_FLAGS as readonly string[]).includes(flag);

export function detectPii(text: string): PiiDetection {
  const spans: PiiSpan[] = [];
  const overlaps = (start: number, end: number) => spans.some((s) => start < s.end && s.start < end);
  const add = (start: number, end: number, flag: PatternFlag) => {
    if (!overlaps(start, end)) spans.push({ start, end, flag });
  };
  // Most specific first: an email may hold digits, an IBAN holds digit groups, a card number
  // is a digit run that a phone pattern could also take.
  for (const s of findEmails(text)) add(s.start, s.end, 'email');
  for (const s of findIbans(text)) add(s.start, s.end, 'iban');
  for (const s of findCards(text)) add(s.start, s.end, 'card');
  for (const s of findPhones(text)) add(s.start, s.end, 'phone');
  spans.sort((a, b) => a.start - b.start);
  return { flags: [...new Set(spans.map((s) => s.flag))].sort(), spans };
}

/**
 * The text as callers without `pii:read` see it; null when there is nothing to redact.
 * With pattern flags only, each detected span becomes a placeholder (`[EMAIL]`, ...). When any
 * flag cannot be located by a pattern (`name`, `health`, custom), or a pattern flag was set by
 * the caller but no such span is found, nothing of the text is shown: `[redacted: a, b]`.
 */
export function redactText(text: string, flags: string[]): string | null {
  if (flags.length === 0) return null;
  const distinct = [...new Set(flags)].sort();
  const whole = `[redacted: ${distinct.join(', ')}]`;
  if (!distinct.every(isPatternFlag)) return whole;
  const { spans } = detectPii(text);
  const found = new Set(spans.map((s) => s.flag));
  if (!distinct.every((f) => found.has(f))) return whole;
  let out = '';
  let at = 0;
  for (const s of spans) {
    out += text.slice(at, s.start) + PLACEHOLDER[s.flag as PatternFlag];
    at = s.end;
  }
  return out + text.slice(at);
}

interface Range {
  start: number;
  end: number;
}

// --- email -------------------------------------------------------------------------------------

const EMAIL =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}(?![A-Za-z0-9-])/g;

function findEmails(text: string): Range[] {
  const out: Range[] = [];
  for (const m of text.matchAll(EMAIL)) out.push({ start: m.index, end: m.index + m[0].length });
  return out;
}

// --- card numbers --------------------------------------------------------------------------------

/** A run of digit groups separated by one space or dash (a maximal match: greedy, no lookahead). */
const DIGIT_RUN = /\d+(?:[ -]\d+)*/g;

/** Luhn (ISO/IEC 7812) check over a string of digits. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * Card numbers: 13–19 digits, written in one piece or in groups of 3–6 with one kind of
 * separator, starting with a major-industry digit 2–6 (payment cards: Mastercard 2/5, Amex,
 * Diners and JCB 3, Visa 4, Discover and UnionPay 6), and Luhn-valid. The leading-digit rule keeps
 * out 13-digit millisecond timestamps and most ids; Luhn keeps out 9 in 10 of the rest.
 */
function findCards(text: string): Range[] {
  const out: Range[] = [];
  for (const m of text.matchAll(DIGIT_RUN)) {
    const start = m.index;
    const end = start + m[0].length;
    // Glued to letters (hex ids, UUIDs, codes) or part of a decimal number: not a card.
    if (/\w/.test(text[start - 1] ?? '') || /\w/.test(text[end] ?? '')) continue;
    if (/[.,]\d/.test(text.slice(end, end + 2)) || /\d[.,]/.test(text.slice(start - 2, start))) continue;
    const groups = splitGroups(m[0], start);
    const found = bestCardWindow(groups);
    if (found) out.push(found);
  }
  return out;
}

interface Group {
  digits: string;
  start: number;
  end: number;
  /** The separator before this group ('' for the first). */
  sep: string;
}

function splitGroups(run: string, offset: number): Group[] {
  const groups: Group[] = [];
  const re = /([ -]?)(\d+)/g;
  for (const g of run.matchAll(re)) {
    const start = offset + g.index + g[1].length;
    groups.push({ digits: g[2], start, end: start + g[2].length, sep: g[1] });
  }
  return groups;
}

/** The longest window of consecutive groups that reads as a card number. */
function bestCardWindow(groups: Group[]): Range | null {
  let best: Range | null = null;
  let bestLen = 0;
  for (let i = 0; i < groups.length; i++) {
    let digits = '';
    for (let j = i; j < groups.length; j++) {
      digits += groups[j].digits;
      if (digits.length > 19) break;
      if (digits.length < 13 || digits.length <= bestLen) continue;
      const window = groups.slice(i, j + 1);
      const shaped =
        window.length === 1 ||
        (window.every((g) => g.digits.length >= 3 && g.digits.length <= 6) &&
          window.slice(2).every((g) => g.sep === window[1].sep));
      if (shaped && /^[2-6]/.test(digits) && luhnValid(digits)) {
        best = { start: groups[i].start, end: groups[j].end };
        bestLen = digits.length;
      }
    }
  }
  return best;
}

// --- IBAN ----------------------------------------------------------------------------------------

/** IBAN lengths by country (SWIFT IBAN registry); other country codes may be 15–34 long. */
const IBAN_LENGTH: Record<string, number> = Object.fromEntries(
  (
    'AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 DK18 ' +
    'DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 ' +
    'IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 ' +
    'MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 ' +
    'SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 YE30'
  )
    .split(' ')
    .map((e) => [e.slice(0, 2), Number(e.slice(2))]),
);

/** Start of an IBAN: country code and check digits at the start of a token. */
const IBAN_HEAD = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}/g;

/** ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97 = 1. */
export function ibanValid(iban: string): boolean {
  const s = iban.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(s)) return false;
  const known = IBAN_LENGTH[s.slice(0, 2)];
  if (known !== undefined && s.length !== known) return false;
  const rearranged = s.slice(4) + s.slice(0, 4);
  let rem = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const value = code <= 57 ? code - 48 : code - 55;
    rem = (value > 9 ? rem * 100 + value : rem * 10 + value) % 97;
  }
  return rem === 1;
}

function findIbans(text: string): Range[] {
  const out: Range[] = [];
  for (const m of text.matchAll(IBAN_HEAD)) {
    // Positions (in text) of the following alphanumerics, single spaces between groups skipped,
    // at most 34 of them (the longest IBAN).
    const positions: number[] = [];
    for (let i = m.index; i < text.length && positions.length < 34; i++) {
      if (/[A-Za-z0-9]/.test(text[i])) positions.push(i);
      else if (!(text[i] === ' ' && /[A-Za-z0-9]/.test(text[i + 1] ?? '') && text[i - 1] !== ' ')) break;
    }
    const country = text.slice(m.index, m.index + 2);
    const lengths = IBAN_LENGTH[country] !== undefined ? [IBAN_LENGTH[country]] : range(34, 15);
    for (const len of lengths) {
      if (positions.length < len) continue;
      const end = positions[len - 1] + 1;
      // It must end where a token ends, not inside a word.
      if (/[A-Za-z0-9]/.test(text[end] ?? '')) continue;
      if (ibanValid(text.slice(m.index, end))) {
        out.push({ start: m.index, end });
        break;
      }
    }
  }
  return out;
}

const range = (from: number, to: number) => Array.from({ length: from - to + 1 }, (_, i) => from - i);

// --- phone numbers -------------------------------------------------------------------------------

/** +CC and the rest: digits, `(0)`-style groups, single separators between them. */
const PHONE_INTL = /(?<![\w+])\+\d(?:[ .-]?(?:\d|\(\d{1,4}\)))*/g;
/** North American: (415) 555-2671, 415-555-2671, 415.555.2671, 415 555 2671. */
const PHONE_NANP = /(?<![\w+.\-/])(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}/g;
/** National with trunk prefix 0: 020 7946 0958, 030/12345678, 06.12.34.56.78, (020) 7946 0958. */
const PHONE_TRUNK =
  /(?<![\w+.\-/])(?:\(0\d{1,4}\) ?|0\d{1,4}(?=[ ./-]\d))(?:[ ./-]?\d{2,8})(?:[ ./-]\d{2,8}){0,5}/g;

const digitCount = (s: string) => s.replace(/\D/g, '').length;

/** A phone number ends at a token boundary, not inside a longer number or word. */
const endsCleanly = (text: string, end: number) => !/^(?:\w|[.,/-]\d)/.test(text.slice(end, end + 2));

function findPhones(text: string): Range[] {
  const out: Range[] = [];
  for (const m of text.matchAll(PHONE_INTL)) {
    const n = digitCount(m[0]);
    if (n >= 9 && n <= 15 && endsCleanly(text, m.index + m[0].length))
      out.push({ start: m.index, end: m.index + m[0].length });
  }
  for (const m of text.matchAll(PHONE_NANP)) {
    if (endsCleanly(text, m.index + m[0].length)) out.push({ start: m.index, end: m.index + m[0].length });
  }
  for (const m of text.matchAll(PHONE_TRUNK)) {
    const found = trunkNumber(m[0]);
    if (found === null) continue;
    const end = m.index + found.length;
    if (found === m[0] && !endsCleanly(text, end)) continue;
    out.push({ start: m.index, end });
  }
  return out;
}

/**
 * A trunk-prefixed national number uses one kind of separator throughout (so dates such as
 * 01.02.2023 or 01/02/2023 12:00 never add up) and has 9–13 digits; extra trailing groups
 * (a number written after the phone number) are left out.
 */
function trunkNumber(match: string): string | null {
  const body = match.startsWith('(') ? match.slice(match.indexOf(')') + 1).trimStart() : match;
  const head = match.slice(0, match.length - body.length);
  const seps = new Set(body.match(/[ ./-]/g) ?? []);
  if (seps.size > 1 && !match.startsWith('(')) return null;
  if (match.startsWith('(') && [...seps].some((s) => s !== ' ' && s !== '-')) return null;
  const parts = body.split(/(?=[ ./-])/);
  while (parts.length > 0) {
    const candidate = head + parts.join('');
    const n = digitCount(candidate);
    if (n >= 9 && n <= 13) return candidate;
    if (n < 9) return null;
    parts.pop();
  }
  return null;
}

/**
 * The first tag or metadata string (value or key) holding personal data a pattern can find, as
 * `tags[2]` or `metadata.contact.email`; undefined when there is none. Tags and metadata are
 * labels: they are filtered on, listed and exported to every caller, so personal data belongs in
 * the text, where it is flagged and redacted.
 */
export function findPiiInLabels(
  tags: readonly string[] | undefined,
  metadata: Record<string, unknown> | undefined,
  prefix = '',
): { field: string; flag: string } | undefined {
  const at = (name: string) => (prefix ? `${prefix}.${name}` : name);
  const flagOf = (s: string) => detectPii(s).flags[0];
  for (const [i, tag] of (tags ?? []).entries()) {
    const flag = flagOf(tag);
    if (flag) return { field: at(`tags[${i}]`), flag };
  }
  const stack: { value: unknown; path: string }[] = [{ value: metadata ?? {}, path: at('metadata') }];
  while (stack.length > 0) {
    const { value, path } = stack.pop() as (typeof stack)[number];
    if (typeof value === 'string') {
      const flag = flagOf(value);
      if (flag) return { field: path, flag };
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}[${i}]` });
    } else if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, v] = entries[i];
        const flag = flagOf(k);
        if (flag) return { field: `${path}.${k}`, flag };
        stack.push({ value: v, path: `${path}.${k}` });
      }
    }
  }
  return undefined;
}
