import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const hasServer = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));

/**
 * The directory holding initdb and pg_ctl: PG_BIN, else what `pg_config --bindir` says, else the
 * newest version under Debian's and Ubuntu's /usr/lib/postgresql/<version>/bin (off PATH there);
 * undefined when no PostgreSQL server is installed.
 */
export function postgresBinaries(): string | undefined {
  if (process.env.PG_BIN) return hasServer(process.env.PG_BIN) ? process.env.PG_BIN : undefined;
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    if (hasServer(dir)) return dir;
  } catch {
    // No pg_config: look where Debian puts the server.
  }
  const debian = '/usr/lib/postgresql';
  const versions = existsSync(debian) ? readdirSync(debian).filter((v) => /^\d+$/.test(v)) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(debian, v, 'bin')).find(hasServer);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface TlsPostgres {
  port: number;
  stop(): void;
}

/**
 * A throw-away PostgreSQL server in a temp dir that accepts TCP connections over TLS only
 * (`hostssl` lines, no `host` line), with the given certificate and key, trusting every user (the
 * test is about the transport). PostgreSQL refuses to run as root: then initdb and pg_ctl run as
 * the `postgres` OS user, which must exist.
 */
export async function startTlsPostgres(
  bin: string,
  server: { certFile: string; keyFile: string },
): Promise<TlsPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'ml-pgtls-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) =>
    execFileSync(
      asRoot ? 'runuser' : join(bin, cmd),
      asRoot ? ['-u', 'postgres', '--', join(bin, cmd), ...args] : args,
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      },
    );
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  // The server reads its key only when it is private to the server's user.
  copyFileSync(server.certFile, join(data, 'server.crt'));
  copyFileSync(server.keyFile, join(data, 'server.key'));
  chmodSync(join(data, 'server.key'), 0o600);
  if (asRoot) {
    const owner = execFileSync('stat', ['-c', '%u:%g', data]).toString().trim().split(':').map(Number);
    for (const f of ['server.crt', 'server.key'])
      chownSync(join(data, f), owner[0] as number, owner[1] as number);
  }
  const port = await freePort();
  writeFileSync(
    join(data, 'pg_hba.conf'),
    ['local all all trust', 'hostssl all all 127.0.0.1/32 trust', 'hostssl all all ::1/128 trust', ''].join(
      '\n',
    ),
  );
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    [
      `port = ${port}`,
      "listen_addresses = 'localhost'",
      `unix_socket_directories = '${dir}'`,
      'ssl = on',
      "ssl_cert_file = 'server.crt'",
      "ssl_key_file = 'server.key'",
      'fsync = off',
      'shared_buffers = 16MB',
      'max_connections = 20',
      '',
    ].join('\n'),
  );
  run('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  return {
    port,
    stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
