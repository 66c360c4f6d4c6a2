import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig } from '../config.js';
import { startServer, startWorker, stopOnSignals } from '../start/server.js';
import { runAuditVerify } from './audit.js';
import { runBackup, runIndexLoad, runRestore } from './backup.js';
import {
  runAuditArchive,
  runIndexRebuild,
  runIngest,
  runJobsDead,
  runJobsRetry,
  runMigrate,
  runSearch,
} from './commands.js';
import {
  runKeysList,
  runKeysNewKek,
  runKeysReencrypt,
  runKeysRetireData,
  runKeysRewrap,
  runKeysRotateData,
} from './encryption-keys.js';
import { runAuditSign, runKeysRotate, runKeysShow } from './keys.js';
import { runMcp } from './mcp.js';
import { runReembed } from './reembed.js';

const int = (name: string, min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new InvalidArgumentError(`${name} must be ${min}..${max}`);
  return n;
};

const program = new Command('memory-layer')
  .description('Long-term memory for AI agents. Settings come from environment variables (see README).')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the HTTP API and the indexing worker')
  .option('--no-worker', 'API only; run `memory-layer worker` elsewhere')
  .action(async (opts: { worker: boolean }) => {
    const s = await startServer(loadConfig(), { worker: opts.worker });
    stopOnSignals(s.stop, (m) => s.app.logger.info(m));
  });

program
  .command('worker')
  .description('run only the indexing worker')
  .action(async () => {
    const w = await startWorker(loadConfig());
    stopOnSignals(w.stop, (m) => w.app.logger.info(m));
  });

program
  .command('mcp')
  .description(
    'MCP server over stdio (for agents that spawn it): opens DATA_DIR itself, or with --url calls a running service',
  )
  .option('--url <url>', 'base URL of a running service, e.g. https://memory.example.com')
  .option('--token-env <name>', 'environment variable holding the bearer token', 'MEMORY_LAYER_TOKEN')
  .action((opts: { url?: string; tokenEnv: string }) => runMcp(opts));

program.command('migrate').description('apply database migrations and exit').action(runMigrate);

program
  .command('ingest')
  .description('import memories from a JSON Lines file (one memory per line); resumable')
  .argument('<file>', 'JSONL: {"text": "...", "namespace"?, "tags"?, "metadata"?, "vector"?, "model"?, ...}')
  .option('-d, --division <id>', 'division to write into', 'default')
  .option('-b, --batch <n>', 'lines per transaction (default IMPORT_CHUNK_LINES)', int('batch', 1, 20_000))
  .option('--skip-bad', 'report bad lines and import the others (default: stop at the first bad line)')
  .option('--atomic', 'all or nothing: one transaction for the whole file')
  .option('--no-index', 'only queue the memories; leave indexing to a running worker')
  .action(runIngest);

program
  .command('search')
  .description('search memories and print the hits')
  .argument('<query>', 'text to search for')
  .option('-d, --division <id>', 'division', 'default')
  .option('-k, --k <n>', 'number of hits', int('k', 1, 100), 10)
  .option('-m, --mode <mode>', 'hybrid | vector | keyword', 'hybrid')
  .option('-n, --namespace <ns>', 'only this namespace')
  .option('--json', 'print the raw JSON answer')
  .action(runSearch);

program
  .command('reembed')
  .description(
    "re-embed memories with another model, with a progress bar; each division's search switches once its memories are done",
  )
  .option('--to <model@version>', 'the model to move to (see EMBEDDING_MODELS_FILE)')
  .option('-d, --division <id>', 'only this division (default: every division)')
  .option('--status', "show each division's model and its latest re-embedding, then exit")
  .option('--json', 'with --status: print JSON')
  .action(runReembed);

const index = program.command('index').description('vector index maintenance');
index
  .command('rebuild')
  .description('rebuild the vector index from the vectors kept in PostgreSQL (no re-embedding)')
  .option('--from-snapshot <id>', "load it from a snapshot's vectors instead (see `backup`)")
  .option('--store-dir <dir>', 'read the snapshot from this directory instead of the object store')
  .action((opts: { fromSnapshot?: string; storeDir?: string }) =>
    opts.fromSnapshot ? runIndexLoad(opts.fromSnapshot, opts) : runIndexRebuild(),
  );

program
  .command('backup')
  .description('write a consistent snapshot (tables, vectors, signed audit heads) to the object store')
  .option('--list', 'list the complete snapshots instead')
  .option('--store-dir <dir>', 'write to (or list) this directory instead of the configured object store')
  .action(runBackup);

program
  .command('restore')
  .description('rebuild an empty installation from a snapshot; verifies checksums and audit chains first')
  .argument('<snapshot>', 'snapshot id, as printed by `backup` (e.g. 20261124T213000123Z-1a2b3c)')
  .option('--store-dir <dir>', 'read the snapshot from this directory instead of the configured object store')
  .option('--key <file>', "trusted public key (JWK) the snapshot's audit heads must be signed with")
  .action(runRestore);

const audit = program.command('audit').description('the audit trail');
audit
  .command('verify')
  .description(
    'verify a proof bundle or an audit archive offline (no database): chain, signed head, checksums',
  )
  .argument('<file>', 'a bundle from POST /v1/exports, or an audit archive (.jsonl.gz) or its manifest')
  .option('--key <file>', 'trusted public key (JWK or JWK set) the head must be signed with')
  .option('--manifest <file>', "the archive's manifest (default: <name>.manifest.json next to it)")
  .option('--previous <file>', "the previous archive's manifest: check that this archive continues it")
  .action((file: string, opts: { key?: string; manifest?: string; previous?: string }) =>
    runAuditVerify(file, opts),
  );
audit
  .command('archive')
  .description('write the audit trail not yet archived to the object store (gzip JSONL + signed manifest)')
  .option('-d, --division <id>', 'only this division')
  .option('--day <yyyy-mm-dd>', 'only up to the end of this UTC day (default: up to now)')
  .action(runAuditArchive);
audit
  .command('sign')
  .description("sign every division's audit head with the configured key now (after `keys rotate`)")
  .action(runAuditSign);

const keys = program
  .command('keys')
  .description('the audit signing key (rotate, show) and the encryption keys (see docs/security.md)');
keys
  .command('rotate')
  .description('write a new Ed25519 signing key and its public JWK (never overwrites; changes no setting)')
  .option(
    '-o, --out <file>',
    'where to write the private key (default: DATA_DIR/keys/audit-signing-key-<time>.pem)',
  )
  .action(runKeysRotate);
keys
  .command('show')
  .description('the key id and public JWK of the configured audit signing key')
  .option('--jwk', 'print only the public JWK (to pin: `audit verify --key`)')
  .action(runKeysShow);
keys
  .command('list')
  .description("the KEK's fingerprint, each division's data key versions and the artifacts under each")
  .option('--json', 'print JSON')
  .action(runKeysList);
keys
  .command('new-kek')
  .description('write a new random key-encryption key (hex, mode 0600; never overwrites) and its fingerprint')
  .requiredOption('-o, --out <file>', 'where to write it')
  .action(runKeysNewKek);
keys
  .command('rewrap')
  .description(
    'KEK rotation: re-wrap every data key wrapped by KEK_PREVIOUS_FILE with KEK_FILE (no object rewritten)',
  )
  .action(runKeysRewrap);
keys
  .command('rotate-data')
  .description("rotate a division's data key: a new version for new writes, and a re-encryption run queued")
  .requiredOption('-d, --division <id>', 'the division')
  .action(runKeysRotateData);
keys
  .command('reencrypt')
  .description(
    "re-encrypt artifacts to their division's current data key version, here, until done (resumable)",
  )
  .option('-d, --division <id>', 'only this division (default: every division)')
  .option('--status', "show each division's latest re-encryption run, then exit")
  .option('--json', 'with --status: print JSON')
  .action(runKeysReencrypt);
keys
  .command('retire-data')
  .description('remove an old data key version once no artifact uses it (older snapshots lose that division)')
  .requiredOption('-d, --division <id>', 'the division')
  .requiredOption('--version <n>', 'the version to retire', int('version', 1, 1_000_000))
  .action(runKeysRetireData);

const jobs = program.command('jobs').description('the job queue');
jobs
  .command('dead')
  .description('list dead-lettered jobs')
  .option('-l, --limit <n>', 'at most this many', int('limit', 1, 500), 100)
  .option('--json', 'print JSON')
  .action(runJobsDead);
jobs
  .command('retry')
  .description('put a dead job back in the queue')
  .argument('<id>', 'job id', int('id', 1, Number.MAX_SAFE_INTEGER))
  .action(runJobsRetry);

program.parseAsync().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`memory-layer: ${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  process.stderr.write(`memory-layer: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
