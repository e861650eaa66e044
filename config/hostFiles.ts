// What a runbook may read or clean up on the filesystem where a target runs: application log files
// by name (container and systemd targets), directories whose old files housekeeping deletes and a
// logrotate file it may force (systemd targets, on their host). Every one is an absolute path written
// in the config and checked here at load; a runbook names a log file only by its key, and an alert
// names nothing.
import { z } from 'zod';
import { commandName } from './targetCommands.js';

/** Why a path is unusable, or undefined: absolute, normalised, printable. */
export function pathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'expected an absolute path';
  if (path.length > 1_024) return 'longer than 1024 characters';
  if (/[\x00-\x1f\x7f]/.test(path)) return 'holds a control character';
  if (path !== '/' && path.endsWith('/')) return 'ends in "/"';
  if (path.includes('//')) return 'holds "//"';
  if (path.split('/').some((s) => s === '.' || s === '..')) return 'holds a "." or ".." segment';
  return undefined;
}

// Directories housekeeping never deletes in, nor anywhere below: what they hold is not the
// application's to clean (a database's relation files, a container runtime's layers, the system).
// Its `find … -delete` of old files is recursive: one typo here would delete them.
const protectedDirs: ReadonlyArray<readonly [string, string]> = [
  ...(['/bin', '/sbin'] as const).map((d) => [d, "the system's programs"] as const),
  ...(['/lib', '/lib32', '/lib64', '/libx32'] as const).map((d) => [d, "the system's libraries"] as const),
  ['/usr', 'the installed programs and libraries'],
  ['/boot', 'the kernel and the boot loader'],
  ['/efi', 'the boot loader'],
  ['/etc', "the system's configuration"],
  ['/dev', 'the devices'],
  ...(['/proc', '/sys'] as const).map((d) => [d, "the kernel's interfaces"] as const),
  ['/run', "the running system's sockets, locks and pid files"],
  ['/lost+found', "the file system's recovered files"],
  ['/snap', 'the snap packages'],
  // The system's state under /var.
  ...(['/var/lib/dpkg', '/var/lib/apt', '/var/lib/rpm', '/var/lib/dnf', '/var/lib/yum'] as const).map(
    (d) => [d, "the package manager's database"] as const,
  ),
  ['/var/lib/snapd', "snapd's state"],
  ['/var/lib/systemd', "systemd's state"],
  ['/var/log/journal', "the systemd journal's files"],
  ['/var/spool/cron', "the users' crontabs"],
  // Databases.
  ['/var/lib/postgresql', "PostgreSQL's data"],
  ['/var/lib/pgsql', "PostgreSQL's data"],
  ['/var/lib/mysql', "MySQL's or MariaDB's data"],
  ['/var/lib/mariadb', "MariaDB's data"],
  ['/var/lib/redis', "Redis's data"],
  ['/var/lib/valkey', "Valkey's data"],
  ['/var/lib/mongodb', "MongoDB's data"],
  ['/var/lib/mongo', "MongoDB's data"],
  ['/var/lib/cassandra', "Cassandra's data"],
  ['/var/lib/elasticsearch', "Elasticsearch's data"],
  ['/var/lib/opensearch', "OpenSearch's data"],
  ['/var/lib/clickhouse', "ClickHouse's data"],
  ['/var/lib/influxdb', "InfluxDB's data"],
  ['/var/lib/couchdb', "CouchDB's data"],
  ['/var/lib/neo4j', "Neo4j's data"],
  ['/var/lib/rabbitmq', "RabbitMQ's queues"],
  ['/var/lib/kafka', "Kafka's logs"],
  ['/var/lib/zookeeper', "ZooKeeper's data"],
  ['/var/lib/prometheus', "Prometheus's time series"],
  ['/var/lib/etcd', "etcd's data"],
  // Container runtimes and virtual machines.
  ['/var/lib/docker', "Docker's images, containers and volumes"],
  ['/var/lib/containerd', "containerd's images and containers"],
  ['/opt/containerd', "containerd's plugins"],
  ['/var/lib/containers', "Podman's or CRI-O's images and containers"],
  ['/var/lib/kubelet', "the kubelet's pods and volumes"],
  ['/var/lib/cni', "the container network's state"],
  ['/var/lib/rancher', "k3s's or RKE2's cluster data"],
  ...(['/var/lib/lxc', '/var/lib/lxd', '/var/lib/incus'] as const).map((d) => [d, 'system containers'] as const),
  ['/var/lib/machines', "systemd-nspawn's containers"],
  ['/var/lib/libvirt', "virtual machines' disks"],
];

// Directories that hold other software's files besides the application's.
const sharedDirs = new Set([
  '/home',
  '/media',
  '/mnt',
  '/opt',
  '/root',
  '/srv',
  '/tmp',
  '/var',
  '/var/backups',
  '/var/cache',
  '/var/lib',
  '/var/log',
  '/var/mail',
  '/var/spool',
  '/var/tmp',
  '/var/www',
]);

/** Why a directory may not be cleaned up by housekeeping, or undefined. */
export function housekeepingDirProblem(dir: string): string | undefined {
  const problem = pathProblem(dir);
  if (problem) return problem;
  if (dir === '/') return '/ holds the whole system: housekeeping never deletes there';
  const inside = protectedDirs.find(([p]) => dir === p || dir.startsWith(`${p}/`));
  if (inside) {
    const [p, what] = inside;
    return dir === p
      ? `${dir} holds ${what}: housekeeping never deletes there`
      : `${dir} is inside ${p}, which holds ${what}: housekeeping never deletes there`;
  }
  if (sharedDirs.has(dir)) return `${dir} holds more than one application's files; name the application's own directory below it`;
  // A folder above one of them would reach it too.
  const below = protectedDirs.find(([p]) => p.startsWith(`${dir}/`));
  if (below) return `${dir} holds ${below[0]} (${below[1]}): housekeeping never deletes there`;
  return undefined;
}

const refined = (check: (p: string) => string | undefined) =>
  z
    .string()
    .max(1_024, 'at most 1024 characters')
    .superRefine((p, ctx) => {
      const problem = check(p);
      if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
    });

/** `logFiles: { app: /var/log/app/app.log }`: what a `logs` step with `file: app` reads. */
export const logFiles = z
  .record(commandName, refined(pathProblem))
  .refine((m) => Object.keys(m).length <= 20, 'at most 20 log files')
  .default({});

/** `housekeeping:` of a systemd target: what its `housekeeping` and `logrotate` steps may touch on its host. */
export const housekeeping = z
  .object({
    /** Directories under which regular files older than the step's age are deleted (symlinks never followed). */
    paths: z.array(refined(housekeepingDirProblem)).max(20).default([]),
    /** The logrotate configuration a `logrotate` step forces (`logrotate -f <file>`). */
    logrotate: refined(pathProblem).optional(),
  })
  .strict()
  .superRefine((h, ctx) => {
    h.paths.forEach((p, i) => {
      const outer = h.paths.find((q, j) => j !== i && p.startsWith(`${q}/`));
      if (outer) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['paths', i], message: `${p} is inside ${outer}, already listed` });
      if (h.paths.indexOf(p) !== i) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['paths', i], message: `${p} is listed twice` });
    });
  });

export type Housekeeping = z.output<typeof housekeeping>;
