import type { JWK } from 'jose';
import type { ChainHead } from './chain.js';
import type { SignedHead } from './signer.js';
import type { AuditEvent } from './types.js';

/** The proof-export format; a verifier refuses any other. */
export const BUNDLE_FORMAT = 'memory-layer-proof/1';

/** A memory as a proof bundle records it: the row's facts, its vector's metadata, never the vector. */
export interface BundleMemory {
  id: string;
  agentId: string | null;
  namespace: string;
  kind: string;
  /** The text; the redacted text when exported without PII and there is something to redact; '' once purged. */
  text: string;
  /** True when `text` is the redacted text. */
  redacted: boolean;
  /**
   * SHA-256 (hex) of the normalised `text`: the original's, or the redacted text's when `redacted`
   * (a digest of the original would confirm guessed personal data). Bundles made before this rule
   * carry the original's digest with redacted texts; verifiers do not hold that against them.
   */
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  piiFlags: string[];
  status: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
  purgedAt: string | null;
  legalHold: boolean;
  expiresAt: string | null;
  vector: {
    model: string;
    version: string;
    dimensions: number;
    /** SHA-256 (hex) of the stored embedding bytes (little-endian float32). */
    checksum: string;
  } | null;
}

/** Files attached to memories come with object storage (a later issue); their checksums go here. */
export interface BundleArtifact {
  id: string;
  checksum: string;
  [key: string]: unknown;
}

/** A division's proof export, serialised as canonical JSON (RFC 8785). Verifiable offline. */
export interface ProofBundle {
  format: typeof BUNDLE_FORMAT;
  divisionId: string;
  exportedAt: string;
  /** Whether memory texts were exported unredacted (the export needed pii:read). */
  includesPii: boolean;
  memories: BundleMemory[];
  artifacts: BundleArtifact[];
  /** Every event of the division's chain, seq 1 to head.seq. */
  auditEvents: AuditEvent[];
  head: ChainHead;
  signedHead: SignedHead;
  /** The public key that signed the head (pin it with `audit verify --key`). */
  publicKey: JWK;
}
