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

// Trees no housekeeping rule belongs in (programs, configuration, kernel interfaces), and
// directories that hold other software's state besides the application's.
const systemTrees = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/run', '/sbin', '/sys', '/usr'];
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
  if (dir === '/' || systemTrees.some((t) => dir === t || dir.startsWith(`${t}/`)))
    return `${dir} is a system directory; name the application's own directory`;
  if (sharedDirs.has(dir)) return `${dir} holds more than one application's files; name the application's own directory below it`;
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
