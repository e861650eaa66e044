// Secrets (passwords, tokens, webhook URLs) are wrapped as soon as they are read, so that logging,
// JSON serialisation or an error message that includes the config shows "[redacted]" instead.
//
// A secret from the config is resolved on first use, not when the config is parsed: a host agent
// needs only the secrets of its own units, and must not read (or need) the database passwords of
// the engine. The loader resolves up front what each process needs, so a missing one still stops
// that process at start-up, naming its key.
import { readFileSync } from 'node:fs';

type Ref = string | { env: string } | { file: string };

type State = { value: string } | { error: string } | { ref: Exclude<Ref, string>; env: NodeJS.ProcessEnv };

export class Secret {
  #state: State;
  private constructor(state: State) {
    this.#state = state;
  }

  static of(value: string): Secret {
    return new Secret({ value });
  }

  /** Resolved now: throws when the variable is unset or the file cannot be read. */
  static resolve(ref: Ref, env: NodeJS.ProcessEnv = process.env): Secret {
    const s = Secret.lazy(ref, env);
    s.reveal();
    return s;
  }

  /** Resolved on first reveal() (or check()); an inline string is already a value. */
  static lazy(ref: Ref, env: NodeJS.ProcessEnv = process.env): Secret {
    return typeof ref === 'string' ? new Secret({ value: ref }) : new Secret({ ref, env });
  }

  /** Whether the value has been read (an inline value always has). */
  get resolved(): boolean {
    return 'value' in this.#state;
  }

  /** Resolves the secret; what is wrong with it (never its value), or undefined when it is usable. */
  check(): string | undefined {
    const state = this.#state;
    if ('value' in state) return undefined;
    if ('error' in state) return state.error;
    try {
      this.#state = { value: read(state.ref, state.env) };
      return undefined;
    } catch (err) {
      this.#state = { error: (err as Error).message };
      return this.#state.error;
    }
  }

  /** The only way to the value; grep for it to audit where secrets go. */
  reveal(): string {
    const problem = this.check();
    if (problem !== undefined) throw new Error(problem);
    return (this.#state as { value: string }).value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[redacted]';
  }
}

function read(ref: Exclude<Ref, string>, env: NodeJS.ProcessEnv): string {
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined || value === '') throw new Error(`environment variable ${ref.env} is not set`);
    return value;
  }
  try {
    return readFileSync(ref.file, 'utf8').trim();
  } catch (err) {
    throw new Error(`secret file ${ref.file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/**
 * Removes every occurrence of the given secrets from a text (error messages from drivers echo DSNs).
 * A secret this process never resolved cannot be in the text through it, and is not read for this.
 */
export function redact(text: string, secrets: Array<Secret | undefined>): string {
  let out = text;
  for (const s of secrets) {
    if (!s?.resolved) continue;
    const v = s.reveal();
    if (v && v.length >= 4) out = out.split(v).join('[redacted]');
  }
  return out;
}

// Pure, so workflow code can use it too: kept in its own module.
export { redactUrls, safeUrl } from './safeUrl.js';
