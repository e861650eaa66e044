// What a runbook may run or read on a container or systemd target: commands written in the config
// as argument arrays (never a shell string, never from a runbook file or an alert), and the paths
// whose sizes `hostDiagnostics` reports. A runbook names a command only by its key here.
import { z } from 'zod';
import { regexText as regex } from './regexText.js';
import { durationPattern, formatDuration, parseDuration } from './duration.js';

/** A command's longest run: its activity heartbeats, but a page should not wait longer than this. */
export const maxCommandTimeoutMs = 10 * 60_000;

/** The key a runbook's `command:` names. */
export const commandName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'expected a command name of letters, digits, ".", "_" or "-" (at most 63)');

const noNul = (what: string) =>
  z
    .string()
    .max(4_096)
    .refine((s) => !s.includes('\0'), `${what} holds a NUL character`);

/** argv[0]: what execve (the host agent) or the container runtime (docker exec) starts, with no shell between. */
export const programPattern = /^(\/[^\0\n]{0,1023}|[A-Za-z0-9_+][A-Za-z0-9._+-]{0,127})$/;

const commandTimeout = z
  .string()
  .regex(durationPattern, 'expected a duration such as "30s", "15m" or "1h"')
  .refine((d) => !durationPattern.test(d) || (parseDuration(d) > 0 && parseDuration(d) <= maxCommandTimeoutMs), {
    message: `expected more than 0 and at most ${formatDuration(maxCommandTimeoutMs)}`,
  });

export const targetCommand = z
  .object({
    /** The program and its arguments, exactly as they are passed: `[/usr/bin/df, -P]`. */
    argv: z
      .array(noNul('an argument'))
      .min(1)
      .max(100)
      .superRefine((argv, ctx) => {
        if (argv[0] !== undefined && !programPattern.test(argv[0]))
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: [0],
            message: 'argv[0] must be an absolute path or a bare program name (no spaces, quotes or shell syntax)',
          });
      }),
    timeout: commandTimeout.default('30s'),
    /**
     * Lines `KEY=value` or `KEY: value` whose KEY matches one of these (case-insensitive) keep the
     * key and lose the value: `env` without the values of `.*(PASSWORD|TOKEN|SECRET).*`.
     */
    redact: z.array(regex).max(50).default([]),
    /** Keep only the lines matching this regular expression (`env` filtered to `^(DATABASE|REDIS)_`). */
    keep: regex.optional(),
    /** Cap on the output kept (at most limits.outputBytes, which is also the default). */
    maxOutputBytes: z.number().int().min(64).max(1_048_576).optional(),
    /**
     * Whether the command only reads. A command that is not marked so is taken to change
     * something: a dry run describes it instead of running it, and it is tried once.
     */
    readOnly: z.boolean().default(false),
    description: z.string().max(500).optional(),
  })
  .strict();

/** The folders whose sizes `hostDiagnostics` may report (du -s). Absolute paths only. */
export const diagnosticPaths = z
  .array(z.string().regex(/^\/[^\0\n]{0,1023}$/, 'expected an absolute path'))
  .max(20)
  .default([]);

/** What container and systemd targets (the kinds with a place to run a command) may add to their keys. */
export const commandTargetKeys = {
  commands: z.record(commandName, targetCommand).default({}),
  diagnosticPaths,
};

export type TargetCommand = z.output<typeof targetCommand>;
