// Secrets (passwords, tokens, webhook URLs) are wrapped as soon as they are read, so that logging,
// JSON serialisation or an error message that includes the config shows "[redacted]" instead.
import { readFileSync } from 'node:fs';

type Ref = string | { env: string } | { file: string };

export class Secret {
  readonly #value: string;
  private constructor(value: string) {
    this.#value = value;
  }

  static of(value: string): Secret {
    return new Secret(value);
  }

  static resolve(ref: Ref, env: NodeJS.ProcessEnv = process.env): Secret {
    if (typeof ref === 'string') return new Secret(ref);
    if ('env' in ref) {
      const value = env[ref.env];
      if (value === undefined || value === '') throw new Error(`environment variable ${ref.env} is not set`);
      return new Secret(value);
    }
    try {
      return new Secret(readFileSync(ref.file, 'utf8').trim());
    } catch (err) {
      throw new Error(`secret file ${ref.file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }

  /** The only way to the value; grep for it to audit where secrets go. */
  reveal(): string {
    return this.#value;
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

/** Removes every occurrence of the given secrets from a text (error messages from drivers echo DSNs). */
export function redact(text: string, secrets: Array<Secret | undefined>): string {
  let out = text;
  for (const s of secrets) {
    const v = s?.reveal();
    if (v && v.length >= 4) out = out.split(v).join('[redacted]');
  }
  return out;
}
