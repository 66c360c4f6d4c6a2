/**
 * How busy the machine was with other work while a scenario ran: the CPU time of the whole machine
 * (/proc/stat) minus that of the benchmark and its server, as a share of all cores. On a shared
 * machine this says how far the figures are from what an idle one would give.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

/** USER_HZ: /proc reports CPU time in these ticks (100 on Linux). */
const HZ = 100;

interface Snapshot {
  at: number;
  busy: number;
  ours: number;
}

function machineBusyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return user + nice + system + irq + softirq + steal;
}

function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return 0;
  }
}

export interface LoadReport {
  /** Share of all cores used by other processes (0..1). */
  othersShare: number;
  /** Mean of the 1-minute load average sampled every 2 s. */
  meanLoad: number;
  maxLoad: number;
}

/** Starts watching; `stop()` reports. `pids` are the server processes to count as ours. */
export function watchLoad(pids: () => number[]) {
  const ourTicks = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / (1e6 / HZ) + pids().reduce((sum, pid) => sum + processTicks(pid), 0);
  };
  const take = (): Snapshot => ({ at: performance.now(), busy: machineBusyTicks(), ours: ourTicks() });
  const start = take();
  const loads: number[] = [loadavg()[0]];
  // A server that exits before stop() takes its ticks along: keep its last reading.
  const lastSeen = new Map<number, number>();
  const timer = setInterval(() => {
    loads.push(loadavg()[0]);
    for (const pid of pids()) lastSeen.set(pid, processTicks(pid));
  }, 2000);
  timer.unref();
  return {
    /** Reads the servers' CPU time now (call before stopping one). */
    note() {
      for (const pid of pids()) lastSeen.set(pid, processTicks(pid));
    },
    stop(): LoadReport {
      clearInterval(timer);
      for (const pid of pids()) lastSeen.set(pid, processTicks(pid));
      const u = process.cpuUsage();
      const endOurs = (u.user + u.system) / (1e6 / HZ) + [...lastSeen.values()].reduce((a, b) => a + b, 0);
      const end = { at: performance.now(), busy: machineBusyTicks() };
      const seconds = (end.at - start.at) / 1000;
      const others = end.busy - start.busy - (endOurs - start.ours);
      loads.push(loadavg()[0]);
      return {
        othersShare: Math.max(0, others / HZ / (seconds * cpus().length)),
        meanLoad: loads.reduce((a, b) => a + b, 0) / loads.length,
        maxLoad: Math.max(...loads),
      };
    },
  };
}
