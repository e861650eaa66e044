// The stack's mail server (stack/lib/mail.sh: exim on 127.0.0.1) as tests see it: where to send,
// with which credentials, and the Maildir every recipient at its domain is delivered to. A test
// finds its mails by Message-ID or by a recipient no other test uses.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { stackDir } from './stack.js';

export interface MailServer {
  host: string;
  /** SMTP with STARTTLS and AUTH. */
  port: number;
  /** SMTP over implicit TLS. */
  tlsPort: number;
  /** Every recipient at this domain lands in the Maildir; local parts "refused", "refused-*" are refused at RCPT. */
  domain: string;
  user: string;
  password: string;
  /** The stack's mail CA, which signed the server's certificate (127.0.0.1, localhost). */
  caFile: string;
  maildir: string;
}

let cached: MailServer | undefined;

export function mailServer(): MailServer {
  if (cached) return cached;
  const file = join(stackDir, 'stack.env');
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(MAIL_[A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  const need = (k: string) => {
    const v = env[k];
    if (v === undefined) throw new Error(`${file} has no ${k}: the stack's mail server is not up (npm run stack -- up)`);
    return v;
  };
  cached = {
    host: need('MAIL_HOST'),
    port: Number(need('MAIL_PORT')),
    tlsPort: Number(need('MAIL_TLS_PORT')),
    domain: need('MAIL_DOMAIN'),
    user: need('MAIL_USER'),
    password: need('MAIL_PASSWORD'),
    caFile: need('MAIL_CA_FILE'),
    maildir: need('MAIL_DIR'),
  };
  return cached;
}

export interface DeliveredMail {
  file: string;
  raw: string;
  /** The header lines as delivered (continuation lines joined), before any parsing. */
  headerLines: string[];
  /** Envelope recipients, from the Envelope-to header the server adds. */
  envelopeTo: string[];
  parsed: ParsedMail;
}

// Maildir files never change once delivered: the Message-ID and recipients of each are read once.
const index = new Map<string, { messageId: string; envelopeTo: string[] }>();

function headerBlock(raw: string): string[] {
  const end = raw.search(/\r?\n\r?\n/);
  return (end < 0 ? raw : raw.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/);
}

function header(lines: string[], name: string): string[] {
  const prefix = `${name.toLowerCase()}:`;
  return lines.filter((l) => l.toLowerCase().startsWith(prefix)).map((l) => l.slice(prefix.length).trim());
}

function scan(): Array<{ file: string; messageId: string; envelopeTo: string[] }> {
  const out: Array<{ file: string; messageId: string; envelopeTo: string[] }> = [];
  for (const sub of ['new', 'cur']) {
    let names: string[];
    try {
      names = readdirSync(join(mailServer().maildir, sub));
    } catch {
      continue; // no mail delivered yet
    }
    for (const name of names) {
      const file = join(mailServer().maildir, sub, name);
      let entry = index.get(file);
      if (!entry) {
        const lines = headerBlock(readFileSync(file, 'utf8'));
        entry = {
          messageId: header(lines, 'Message-ID')[0] ?? '',
          envelopeTo: (header(lines, 'Envelope-to')[0] ?? '')
            .split(',')
            .map((a) => a.trim().toLowerCase())
            .filter(Boolean),
        };
        index.set(file, entry);
      }
      out.push({ file, ...entry });
    }
  }
  return out;
}

async function load(file: string, envelopeTo: string[]): Promise<DeliveredMail> {
  const raw = readFileSync(file, 'utf8');
  return { file, raw, headerLines: headerBlock(raw), envelopeTo, parsed: await simpleParser(raw) };
}

/** Every delivered mail matching `which` (a Message-ID with its brackets, or a recipient's address). */
export async function delivered(which: { messageId: string } | { to: string }): Promise<DeliveredMail[]> {
  const hits = scan().filter((m) =>
    'messageId' in which ? m.messageId === which.messageId : m.envelopeTo.includes(which.to.toLowerCase()),
  );
  return Promise.all(hits.map((m) => load(m.file, m.envelopeTo)));
}

/**
 * Waits until `count` mails match, then a little longer (a late duplicate must show), and returns
 * them. Delivery to the Maildir follows the server's 250 by a few milliseconds.
 */
export async function waitForMail(which: { messageId: string } | { to: string }, count = 1, timeoutMs = 10_000): Promise<DeliveredMail[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = scan().filter((m) =>
      'messageId' in which ? m.messageId === which.messageId : m.envelopeTo.includes(which.to.toLowerCase()),
    );
    if (found.length >= count) {
      await new Promise((r) => setTimeout(r, 300));
      return delivered(which);
    }
    if (Date.now() > deadline)
      throw new Error(`expected ${count} mail(s) for ${JSON.stringify(which)} within ${timeoutMs} ms; found ${found.length}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function headerValues(mail: DeliveredMail, name: string): string[] {
  return header(mail.headerLines, name);
}
