/**
 * Reads the LoCoMo format (snap-research/LoCoMo, `data/locomo10.json`): conversations of two
 * speakers in dated sessions, and questions whose evidence names the turns that answer them.
 * Each turn becomes one memory: text `"<speaker>: <text>"`, its session, its place in it and the
 * session's date.
 */
import { readFileSync } from 'node:fs';

/** Question categories of LoCoMo; 5 (adversarial: no answer in the conversation) is not asked. */
export const CATEGORIES: Record<number, string> = {
  1: 'multi-hop',
  2: 'temporal',
  3: 'open-domain',
  4: 'single-hop',
};

export interface Turn {
  /** LoCoMo's id of the turn, e.g. `D3:12` (session 3, turn 12). */
  diaId: string;
  text: string;
  sessionId: string;
  sequence: number;
  occurredAt: string | null;
}

export interface Question {
  question: string;
  category: number;
  /** The turns that answer it, normalised and limited to turns of the conversation. */
  evidence: string[];
}

export interface Conversation {
  id: string;
  turns: Turn[];
  questions: Question[];
  /** Questions of categories 1-4 left out because none of their evidence names a turn. */
  withoutEvidence: number;
}

interface RawTurn {
  speaker: string;
  dia_id: string;
  text: string;
}

interface RawSample {
  sample_id: string;
  conversation: Record<string, unknown>;
  qa: { question: string; category: number; evidence?: string[] }[];
}

const MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];

/** `"1:56 pm on 8 May, 2023"` as an ISO 8601 instant (the dates carry no zone: read as UTC). */
export function parseLocomoDate(text: string): string | null {
  const m = /^\s*(\d{1,2}):(\d{2})\s*(am|pm)\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})\s*$/i.exec(text);
  if (!m) return null;
  const month = MONTHS.indexOf(m[5].toLowerCase());
  if (month < 0) return null;
  const hour = (Number(m[1]) % 12) + (m[3].toLowerCase() === 'pm' ? 12 : 0);
  return new Date(Date.UTC(Number(m[6]), month, Number(m[4]), hour, Number(m[2]))).toISOString();
}

/**
 * Evidence ids as the turns spell them: `"D8:6; D9:17"` is two ids, `"D:11:26"` is `D11:26`,
 * `"D30:05"` is `D30:5`; anything that is not a turn of the conversation is dropped.
 */
export function normaliseEvidence(evidence: readonly string[], turns: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  for (const raw of evidence) {
    for (const part of raw.split(/[;,]/)) {
      const m = /^D:?(\d+):0*(\d+)$/.exec(part.trim());
      const id = m ? `D${Number(m[1])}:${m[2]}` : part.trim();
      if (turns.has(id)) out.add(id);
    }
  }
  return [...out];
}

export function loadLocomo(file: string): Conversation[] {
  const samples = JSON.parse(readFileSync(file, 'utf8')) as RawSample[];
  return samples.map((s) => {
    const c = s.conversation;
    const sessions = Object.keys(c)
      .map((k) => /^session_(\d+)$/.exec(k))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const turns: Turn[] = [];
    for (const n of sessions) {
      const when = c[`session_${n}_date_time`];
      const occurredAt = typeof when === 'string' ? parseLocomoDate(when) : null;
      for (const [i, t] of (c[`session_${n}`] as RawTurn[]).entries()) {
        turns.push({
          diaId: t.dia_id,
          text: `${t.speaker}: ${t.text}`,
          sessionId: `session_${n}`,
          sequence: i,
          occurredAt,
        });
      }
    }
    const ids = new Set(turns.map((t) => t.diaId));
    const asked = s.qa.filter((q) => CATEGORIES[q.category] !== undefined);
    const questions = asked
      .map((q) => ({
        question: q.question,
        category: q.category,
        evidence: normaliseEvidence(q.evidence ?? [], ids),
      }))
      .filter((q) => q.evidence.length > 0);
    return { id: s.sample_id, turns, questions, withoutEvidence: asked.length - questions.length };
  });
}
