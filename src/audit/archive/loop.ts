import { createLeaderLoop, type LeaderElection } from '../../platform/leader.js';
import type { Logger } from '../../platform/logger.js';
import type { ArchiveResult } from './writer.js';

/**
 * Runs `run` (the daily archive) every `intervalMs` while this process is the elected leader, so
 * that one replica archives. Failures are logged and retried at the next interval.
 */
export function createArchiveLoop(deps: {
  run: () => Promise<ArchiveResult>;
  leader: LeaderElection;
  intervalMs: number;
  logger: Pick<Logger, 'error' | 'warn'>;
}) {
  let warned = false;
  return createLeaderLoop({
    name: 'audit archive',
    leader: deps.leader,
    intervalMs: deps.intervalMs,
    logger: deps.logger,
    async task() {
      const result = await deps.run();
      if (!result.objectLock && !warned) {
        warned = true;
        deps.logger.warn('audit archives are not retention-locked: the object store has no object lock');
      }
    },
  });
}
