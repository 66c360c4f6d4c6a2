import { describe, expect, it } from 'vitest';
import { detectPii, ibanValid, luhnValid, PII_FLAG, redactText } from '../../src/governance/pii.js';

/** The substrings detected with one flag. */
const found = (text: string, flag: string) =>
  detectPii(text)
    .spans.filter((s) => s.flag === flag)
    .map((s) => text.slice(s.start, s.end));

describe('detectPii: emails', () => {
  it.each(['jane.doe@example.com', 'j.doe+memories@mail.example.co.uk', 'ops_team-1@sub-domain.example.io'])(
    'finds %s',
    (email) => {
      expect(found(`write to ${email}, thanks.`, 'email')).toEqual([email]);
    },
  );

  it.each(['no at sign here', 'user@localhost', 'see @mention and foo@', 'version 1.2.3@latest-ish'])(
    'ignores %j',
    (text) => {
      expect(found(text, 'email')).toEqual([]);
    },
  );
});

describe('detectPii: phone numbers', () => {
  it.each([
    '+1 415 555 2671',
    '+14155552671',
    '+44 20 7946 0958',
    '+44 (0)20 7946 0958',
    '+49 30 12345678',
    '020 7946 0958',
    '(415) 555-2671',
    '415-555-2671',
    '415.555.2671',
    '06 12 34 56 78',
    '030/12345678',
  ])('finds %s', (phone) => {
    expect(found(`call me on ${phone}.`, 'phone')).toEqual([phone]);
  });

  it.each([
    'in 2023 we grew',
    'on 2023-01-15 at 10:30',
    'on 15.01.2023 10:30',
    'due 01/02/2023 12:00',
    'it costs 12.50 EUR, or $1,234.56 with tax',
    'total 1 234 567',
    'id 550e8400-e29b-41d4-a716-446655440000',
    'id 12345678-1234-1234-1234-123456789012',
    'order 123456789',
    'ts 1700000000000',
    'pi is 3.14159265358979',
    'release 10.2.3 and +12.5%',
    'short +44 20',
  ])('ignores %j', (text) => {
    expect(detectPii(text).flags).toEqual([]);
  });

  it('keeps a number written after the phone number out of the span', () => {
    expect(found('020 7946 0958 2023', 'phone')).toEqual(['020 7946 0958']);
  });
});

describe('detectPii: card numbers (Luhn)', () => {
  it.each([
    '4111 1111 1111 1111',
    '4111111111111111',
    '5555-5555-5555-4444',
    '3782 822463 10005',
    '6011111111111117',
    '4012888888881881',
  ])('finds %s', (card) => {
    expect(found(`paid with ${card} yesterday`, 'card')).toEqual([card]);
  });

  it.each([
    '4111 1111 1111 1112',
    '4111111111111121',
    '5555 5555 5555 4443',
    '1234 5678 9012 3456',
    '4111111111111111x',
    'ab4111111111111111',
  ])('ignores %s (Luhn-invalid or glued to letters)', (card) => {
    expect(found(`paid with ${card} yesterday`, 'card')).toEqual([]);
  });

  it('checks Luhn', () => {
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
    expect(luhnValid('4111-1111')).toBe(false);
  });
});

describe('detectPii: IBANs (mod 97)', () => {
  it.each([
    'GB82 WEST 1234 5698 7654 32',
    'GB82WEST12345698765432',
    'DE89 3704 0044 0532 0130 00',
    'FR14 2004 1010 0505 0001 3M02 606',
    'NL91 ABNA 0417 1643 00',
    'CH93 0076 2011 6238 5295 7',
  ])('finds %s', (iban) => {
    expect(found(`transfer to ${iban} today`, 'iban')).toEqual([iban]);
  });

  it.each([
    'GB82 WEST 1234 5698 7654 33',
    'GB28 WEST 1234 5698 7654 32',
    'DE89 3704 0044 0532 0130 01',
    'DE89 3704 0044 0532 0130',
    'XX00 1234',
  ])('ignores %s', (iban) => {
    expect(found(`transfer to ${iban} today`, 'iban')).toEqual([]);
  });

  it('finds two IBANs side by side', () => {
    const text = 'GB82 WEST 1234 5698 7654 32 DE89 3704 0044 0532 0130 00';
    expect(found(text, 'iban')).toEqual(['GB82 WEST 1234 5698 7654 32', 'DE89 3704 0044 0532 0130 00']);
  });

  it('checks mod 97', () => {
    expect(ibanValid('gb82 west 1234 5698 7654 32')).toBe(true);
    expect(ibanValid('GB82 WEST 1234 5698 7654 3')).toBe(false);
  });
});

describe('detectPii: mixed text', () => {
  it('reports distinct sorted flags and non-overlapping spans in order', () => {
    const text =
      'Ana (ana@example.org, +1 415 555 2671) pays from DE89 3704 0044 0532 0130 00 with 4111 1111 1111 1111; ana@example.org again.';
    const d = detectPii(text);
    expect(d.flags).toEqual(['card', 'email', 'iban', 'phone']);
    expect(d.spans.map((s) => s.flag)).toEqual(['email', 'phone', 'iban', 'card', 'email']);
    for (let i = 1; i < d.spans.length; i++)
      expect(d.spans[i].start).toBeGreaterThanOrEqual(d.spans[i - 1].end);
  });

  it('stays fast on long hostile input', () => {
    const hostile = ['+1 1'.repeat(20_000), 'a.'.repeat(40_000), '0 '.repeat(40_000), 'AB12 '.repeat(16_000)];
    const t = performance.now();
    for (const s of hostile) detectPii(s);
    expect(performance.now() - t).toBeLessThan(5_000);
  });
});

describe('redactText', () => {
  it('is null without flags', () => {
    expect(redactText('jane@example.com', [])).toBeNull();
  });

  it('replaces each detected span when every flag is a pattern flag', () => {
    const text =
      'Mail jane@example.com or call (415) 555-2671; card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32.';
    expect(redactText(text, ['email', 'phone', 'card', 'iban'])).toBe(
      'Mail [EMAIL] or call [PHONE]; card [CARD], IBAN [IBAN].',
    );
  });

  it('redacts every detected span, even of a pattern the flags do not list', () => {
    expect(redactText('jane@example.com, 020 7946 0958', ['email'])).toBe('[EMAIL], [PHONE]');
  });

  it('hides the whole text for flags no pattern can locate', () => {
    expect(redactText('Jane has diabetes; jane@example.com', ['health', 'email'])).toBe(
      '[redacted: email, health]',
    );
    expect(redactText('Jane Doe', ['name'])).toBe('[redacted: name]');
    expect(redactText('x', ['financial', 'custom-flag', 'financial'])).toBe(
      '[redacted: custom-flag, financial]',
    );
  });

  it('hides the whole text when a caller-set pattern flag matches nothing it can find', () => {
    expect(redactText('reach me at jane (at) example (dot) com', ['email'])).toBe('[redacted: email]');
  });
});

describe('PII_FLAG', () => {
  it.each(['email', 'health', 'custom_flag-2', 'a'])('accepts %s', (f) => {
    expect(PII_FLAG.test(f)).toBe(true);
  });
  it.each(['', 'Email', '1flag', 'has space', 'x'.repeat(33), 'semi;colon'])('refuses %j', (f) => {
    expect(PII_FLAG.test(f)).toBe(false);
  });
});
