import { AppError, ErrorCode, invalid } from '../platform/errors.js';
import { type Caller, SCOPES } from './caller.js';
import type { Identities } from './identities.js';
import { certificateIdentity } from './tls.js';

export interface AuthRequest {
  headers: Record<string, string | string[] | undefined>;
  socket: unknown;
}

export type Authenticator = (req: AuthRequest) => Promise<Caller>;

export interface AuthenticatorDeps {
  mode: 'dev' | 'enforce';
  /** Certificate CN → service identity; without it no client certificate is accepted. */
  identities?: Identities;
  /** Bearer token verifier; without it no token is accepted. */
  tokens?: { verify(token: string): Promise<Caller> };
}

/** Longest Authorization header looked at; the kernel's tokens are well under 2 KiB. */
export const MAX_AUTHORIZATION_BYTES = 8 * 1024;
const MANIFEST_ID = /^[\x21-\x7e]{1,200}$/;
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

const unauthenticated = (message: string) => new AppError(ErrorCode.unauthenticated, message);

/** The AUTH_MODE=dev caller: everything, everywhere, as `dev`. */
export const devCaller = (): Caller => ({ kind: 'dev', id: 'dev', divisions: '*', scopes: new Set(SCOPES) });

function single(headers: AuthRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) {
    if (value.length > 1) throw unauthenticated(`more than one ${name} header`);
    return value[0];
  }
  return value;
}

function manifestHeader(headers: AuthRequest['headers']): string | undefined {
  const value = headers['x-manifest-signature-id'];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !MANIFEST_ID.test(value)) {
    throw invalid('headers.x-manifest-signature-id', 'must be one value of 1-200 visible ASCII characters');
  }
  return value;
}

/**
 * Establishes who is calling, before any handler runs.
 *
 * - `Authorization: Bearer <jwt>`: the token decides. When the connection also carries a client
 *   certificate, the token still names the caller: the certificate only proves which service
 *   relays the call, while the token is what the kernel delegated to this agent (its division,
 *   agent and scopes). Letting the certificate win would give an agent its relay's wider rights.
 *   A bad token is a 401 even if the certificate alone would have been accepted: presented
 *   credentials are never silently ignored.
 * - Otherwise a verified client certificate: its CN must be listed in the identities file; the
 *   caller gets the scopes of its roles and its divisions.
 * - Nothing: 401 in enforce mode; the all-powerful `dev` caller in dev mode. Credentials that
 *   are presented are checked in dev mode too.
 *
 * `x-manifest-signature-id` (1-200 visible ASCII) names the signed manifest behind the call for
 * audit; for tokens the `msid` claim wins over the header.
 */
export function createAuthenticator(deps: AuthenticatorDeps): Authenticator {
  async function identify(req: AuthRequest): Promise<Caller> {
    const authorization = single(req.headers, 'authorization');
    if (authorization !== undefined) {
      if (Buffer.byteLength(authorization) > MAX_AUTHORIZATION_BYTES)
        throw unauthenticated('the Authorization header is too large');
      const match = BEARER.exec(authorization);
      if (!match) {
        throw unauthenticated(
          /^Bearer(\s|$)/i.test(authorization)
            ? 'malformed bearer token'
            : 'only Authorization: Bearer <token> is accepted',
        );
      }
      if (!deps.tokens) throw unauthenticated('bearer tokens are not accepted: no token keys are configured');
      return deps.tokens.verify(match[1]);
    }
    const cn = certificateIdentity(req.socket);
    if (cn !== undefined) {
      const service = deps.identities?.services.get(cn);
      if (!service) throw unauthenticated('the client certificate is not a known service identity');
      return {
        kind: 'service',
        id: service.id,
        divisions: service.divisions,
        scopes: service.scopes,
        ...(service.manifestSignatureId !== undefined
          ? { manifestSignatureId: service.manifestSignatureId }
          : {}),
      };
    }
    if (deps.mode === 'dev') return devCaller();
    throw unauthenticated('credentials required: a client certificate or Authorization: Bearer <token>');
  }

  return async (req) => {
    const caller = await identify(req);
    // Checked once the caller is known, so a stranger gets 401, not a 400 about a header.
    const manifest = manifestHeader(req.headers);
    if (manifest === undefined) return caller;
    // A token's claim was signed by the kernel: it wins. Elsewhere the header beats the default.
    if (caller.kind === 'agent' && caller.manifestSignatureId !== undefined) return caller;
    return { ...caller, manifestSignatureId: manifest };
  };
}

/** Alias of {@link createAuthenticator}, the name src/http/auth.ts imports. */
export const authenticate = createAuthenticator;
