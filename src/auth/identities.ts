import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { SCOPES, type Scope } from './caller.js';

/**
 * Roles every identities file can use without declaring them. A file's own `roles` are added to
 * these; a role of the same name replaces the built-in one.
 */
export const BUILT_IN_ROLES: Readonly<Record<string, readonly Scope[]>> = Object.freeze({
  reader: ['memory:read'],
  writer: ['memory:read', 'memory:write'],
  deleter: ['memory:read', 'memory:delete'],
  'pii-reader': ['memory:read', 'pii:read'],
  auditor: ['memory:read', 'audit:read'],
  legal: ['memory:read', 'legal-hold:write'],
  admin: ['admin'],
});

/** A service allowed in by its client certificate, with everything its roles add up to. */
export interface ServiceIdentity {
  /** The certificate's subject CN. */
  id: string;
  roles: readonly string[];
  scopes: ReadonlySet<Scope>;
  divisions: readonly string[] | '*';
  /** Recorded in audit events when the request carries no `x-manifest-signature-id` header. */
  manifestSignatureId?: string;
}

export interface Identities {
  roles: ReadonlyMap<string, ReadonlySet<Scope>>;
  services: ReadonlyMap<string, ServiceIdentity>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const DIVISION = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const MANIFEST_ID = /^[\x21-\x7e]{1,200}$/;

const fileSchema = z.strictObject({
  roles: z
    .record(z.string().regex(NAME, 'role names are letters, digits and ._:@-'), z.array(z.string()))
    .optional(),
  services: z.record(
    z.string().min(1, 'a service needs its certificate CN').max(256),
    z.strictObject({
      roles: z.array(z.string()).min(1, 'a service needs at least one role'),
      divisions: z.union([
        z.literal('*'),
        z.array(z.string().regex(DIVISION, 'not a division id')).min(1, 'list divisions, or "*" for all'),
      ]),
      manifestSignatureId: z.string().regex(MANIFEST_ID, 'at most 200 visible ASCII characters').optional(),
    }),
  ),
});

export class IdentitiesError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid identities file ${source}:\n  ${problems.join('\n  ')}`);
    this.name = 'IdentitiesError';
  }
}

const isScope = (s: string): s is Scope => (SCOPES as readonly string[]).includes(s);

/** Validates an already-parsed identities document; `source` names it in error messages. */
export function parseIdentities(doc: unknown, source = '(identities)'): Identities {
  const parsed = fileSchema.safeParse(doc);
  if (!parsed.success) {
    throw new IdentitiesError(
      source,
      parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`),
    );
  }
  const problems: string[] = [];
  const roles = new Map<string, ReadonlySet<Scope>>();
  for (const [name, scopes] of Object.entries(BUILT_IN_ROLES)) roles.set(name, new Set(scopes));
  for (const [name, scopes] of Object.entries(parsed.data.roles ?? {})) {
    const unknown = scopes.filter((s) => !isScope(s));
    for (const s of unknown) {
      problems.push(`roles.${name}: unknown scope ${JSON.stringify(s)} (known: ${SCOPES.join(', ')})`);
    }
    roles.set(name, new Set(scopes.filter(isScope)));
  }
  const services = new Map<string, ServiceIdentity>();
  for (const [cn, entry] of Object.entries(parsed.data.services)) {
    const scopes = new Set<Scope>();
    for (const role of entry.roles) {
      const granted = roles.get(role);
      if (!granted) {
        problems.push(
          `services.${cn}.roles: unknown role ${JSON.stringify(role)} (known: ${[...roles.keys()].join(', ')})`,
        );
        continue;
      }
      for (const s of granted) scopes.add(s);
    }
    services.set(cn, {
      id: cn,
      roles: Object.freeze([...entry.roles]),
      scopes,
      divisions: entry.divisions === '*' ? '*' : Object.freeze([...new Set(entry.divisions)]),
      ...(entry.manifestSignatureId ? { manifestSignatureId: entry.manifestSignatureId } : {}),
    });
  }
  if (problems.length > 0) throw new IdentitiesError(source, problems);
  return { roles, services };
}

/** Reads and validates IDENTITIES_FILE; any problem stops the start with the entry named. */
export function loadIdentities(file: string): Identities {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new IdentitiesError(file, [`cannot read the file (${(err as NodeJS.ErrnoException).code ?? err})`]);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new IdentitiesError(file, [`not valid JSON: ${(err as Error).message}`]);
  }
  return parseIdentities(doc, file);
}
