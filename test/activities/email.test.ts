// Pages by email against the stack's real mail server (exim from Debian, stack/lib/mail.sh), read
// back from its Maildir: headers and threading, escaping, refusals and their failure classes, secrets,
// exactly one mail per page across a real Temporal retry (and what happens in the one window left),
// and an escalation through the interpreter delivering one mail per level.
import { randomUUID } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogEntry } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { NotificationRequest } from '../../activities/contract.js';
import { pageMail } from '../../activities/emailPage.js';
import { createNotifyActivities } from '../../activities/notify.js';
import { parseRunbook } from '../../config/runbookLoad.js';
import { engineConfigShape, type Channel } from '../../config/schema.js';
import { acknowledgeSignal, alertResolvedSignal } from '../../workflows/messages.js';
import { delivered, headerValues, mailServer, waitForMail, type DeliveredMail } from '../support/mailbox.js';
import { failureOf, silentServer } from '../support/net.js';
import { closedPort } from '../support/ports.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { stack } from '../support/stack.js';
import { temporalClient, temporalConnectOptions, uniqueQueue } from '../support/temporal.js';
import { minute, startSkipping, statusOf } from '../workflows/escalationHarness.js';
import { uniqueTarget } from '../workflows/harness.js';

const mail = mailServer();
const uid = () => randomUUID().slice(0, 8);
const at = (local: string) => `${local}@${mail.domain}`;
/** The config's `channels` key, exactly as the engine parses it. */
const channelSchema = engineConfigShape.innerType().shape.channels;

// Everything the Temporal runtime logs in this process (the activity's own log lines included), to
// show the password never reaches a log. Installed before any worker exists.
const logged: LogEntry[] = [];
try {
  Runtime.install({ logger: new DefaultLogger('INFO', (entry) => logged.push(entry)) });
} catch {
  // Installed already in this process: the log check below then sees nothing, and says so.
}

type EmailInput = { to?: string[]; smtp?: Record<string, unknown>; from?: string; subjectPrefix?: string };

/** Channels as the engine gets them: through the config schema (secret refs, defaults). */
function channels(input: Record<string, EmailInput | { type: 'webhook'; url: string }>): Record<string, Channel> {
  const raw = Object.fromEntries(
    Object.entries(input).map(([name, c]) => {
      if ('type' in c) return [name, c];
      const smtp = {
        host: mail.host,
        port: mail.port,
        user: mail.user,
        password: mail.password,
        ca: { file: mail.caFile },
        timeout: '5s',
        ...c.smtp,
      };
      return [
        name,
        {
          type: 'email',
          from: c.from ?? at('engine'),
          to: c.to ?? [at(`oncall-${uid()}`)],
          smtp,
          ...(c.subjectPrefix ? { subjectPrefix: c.subjectPrefix } : {}),
        },
      ];
    }),
  );
  return channelSchema.parse(raw);
}

function toOf(channel: Channel): string[] {
  if (channel.type !== 'email') throw new Error('not an email channel');
  return channel.to;
}

function page(overrides: Partial<NotificationRequest & { dryRun: boolean }> = {}): NotificationRequest & { dryRun: boolean } {
  const incidentKey = `incident:serviceDown:api-${uid()}`;
  return {
    channels: ['mail'],
    event: 'trigger',
    incidentKey,
    idempotencyKey: `${incidentKey}:${randomUUID()}:on-call`,
    severity: 'critical',
    title: "serviceDown on 'api': still down after 3 restarts",
    text: 'health check http://127.0.0.1:18080/health: connection refused\nlast restart 03:12:09',
    actions: ['acknowledge'],
    dryRun: false,
    ...overrides,
  };
}

const notifyWith = (chs: Record<string, Channel>, dryRun = false) =>
  createNotifyActivities({ channels: chs, timeoutMs: 5_000, dryRun }).notify;

function only(mails: DeliveredMail[]): DeliveredMail {
  expect(mails).toHaveLength(1);
  return mails[0]!;
}

describe('a page by email', () => {
  it('arrives once in the Maildir with From, To, Subject, a Message-ID of its page, and no auto-replies asked for', async () => {
    const chs = channels({ mail: { to: [at(`oncall-${uid()}`), at(`sre-${uid()}`)] } });
    const [oncall, sre] = toOf(chs.mail!);
    const req = page();
    expect(await notifyWith(chs)(req)).toEqual({ delivered: [{ channel: 'mail', status: 'sent' }] });

    const m = only(await waitForMail({ to: oncall! }));
    // One copy for both recipients, both on its envelope.
    expect(m.envelopeTo.sort()).toEqual([oncall, sre].sort());
    expect(m.parsed.from?.value).toEqual([{ address: at('engine'), name: '' }]);
    expect(headerValues(m, 'To')).toEqual([`${oncall}, ${sre}`]);
    expect(m.parsed.subject).toBe("[remediation] [critical] serviceDown on 'api': still down after 3 restarts");
    expect(m.parsed.messageId).toMatch(/^<page\.[0-9a-f]{40}@remediation\.test>$/);
    expect(headerValues(m, 'Auto-Submitted')).toEqual(['auto-generated']);
    expect(headerValues(m, 'X-Auto-Response-Suppress')).toEqual(['All']);
    expect(headerValues(m, 'X-Remediation-Incident')).toEqual([req.incidentKey]);
    expect(m.parsed.text).toContain('health check http://127.0.0.1:18080/health: connection refused\nlast restart 03:12:09');
    expect(m.parsed.text).toContain(`To acknowledge: npx remediate ack ${req.incidentKey}`);
    expect(m.parsed.html).toContain('<pre');
    // Received over TLS, logged in.
    expect(headerValues(m, 'Received')[0]).toMatch(/with esmtpsa .*TLS1\.[23]/);
  });

  it('threads the trigger, a repeat, the acknowledgement and the resolution of one incident run; the next run starts its own thread', async () => {
    const chs = channels({ mail: {} });
    const [to] = toOf(chs.mail!);
    const notify = notifyWith(chs);
    const incidentKey = `incident:serviceDown:api-${uid()}`;
    const run = randomUUID();
    const keyed = (key: string, event: NotificationRequest['event'] = 'trigger', r = run) =>
      page({ incidentKey, idempotencyKey: `${incidentKey}:${r}:${key}`, event });
    for (const req of [
      keyed('on-call'),
      keyed('on-call#2'),
      keyed('acknowledge', 'acknowledge'),
      keyed('resolve', 'resolve'),
      keyed('on-call', 'trigger', randomUUID()),
    ])
      await notify(req);

    const mails = await waitForMail({ to: to! }, 5);
    expect(mails).toHaveLength(5);
    const ids = new Set(mails.map((m) => m.parsed.messageId));
    expect(ids.size).toBe(5);
    const threadOf = (m: DeliveredMail) => ({ inReplyTo: m.parsed.inReplyTo, references: m.parsed.references });
    // The first run's thread, by its acknowledgement: both runs' triggers say [critical], and the
    // Maildir does not list the mails in the order they were sent.
    const thread = threadOf(mails.find((m) => m.parsed.subject?.startsWith('[remediation] [acknowledged] '))!);
    expect(thread.inReplyTo).toMatch(/^<incident\.[0-9a-f]{40}@remediation\.test>$/);
    expect(thread.references).toBe(thread.inReplyTo);
    const subjects = mails.map((m) => m.parsed.subject);
    expect(subjects.filter((s) => s?.startsWith('[remediation] [acknowledged] '))).toHaveLength(1);
    expect(subjects.filter((s) => s?.startsWith('[remediation] [resolved] '))).toHaveLength(1);
    const sameRun = mails.filter((m) => threadOf(m).inReplyTo === thread.inReplyTo);
    expect(sameRun).toHaveLength(4);
    const nextRun = mails.filter((m) => threadOf(m).inReplyTo !== thread.inReplyTo);
    expect(nextRun).toHaveLength(1);
    expect(nextRun[0]!.parsed.inReplyTo).toMatch(/^<incident\.[0-9a-f]{40}@remediation\.test>$/);
  });

  it('shows alert text in the HTML part as text, never as markup', async () => {
    const chs = channels({ mail: {} });
    const [to] = toOf(chs.mail!);
    const hostile = `<script>alert(1)</script><img src=x onerror="fetch('//evil')"> & <a href="https://evil.example">login</a>`;
    await notifyWith(chs)(page({ title: `api <b>down</b> & "out"`, text: hostile }));

    const m = only(await waitForMail({ to: to! }));
    const html = m.parsed.html as string;
    expect(html).not.toMatch(/<script|<img|<a |<b>/i);
    expect(html).toContain(
      '&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;fetch(&#39;//evil&#39;)&quot;&gt; &amp; &lt;a href=&quot;https://evil.example&quot;&gt;login&lt;/a&gt;',
    );
    expect(html).toContain('<h2 style="margin:0 0 12px 0">api &lt;b&gt;down&lt;/b&gt; &amp; &quot;out&quot;</h2>');
    // The plain part carries the text as it was written.
    expect(m.parsed.text).toContain(hostile);
  });

  it('cannot be made to carry an extra header or recipient by CR/LF in alert text', async () => {
    const victim = at(`victim-${uid()}`);
    const chs = channels({ mail: {} });
    const [to] = toOf(chs.mail!);
    await notifyWith(chs)(
      page({
        title: `api down\r\nBcc: ${victim}\r\nX-Injected: title`,
        severity: `critical\nX-Injected: severity`,
        incidentKey: `incident:serviceDown:api\r\nX-Injected: incident`,
        text: `body\r\n\r\nX-Injected: body`,
      }),
    );

    const m = only(await waitForMail({ to: to! }));
    expect(m.headerLines.filter((l) => /^(bcc|cc|x-injected):/i.test(l))).toEqual([]);
    expect(m.envelopeTo).toEqual([to]);
    expect(m.parsed.subject).toBe(`[remediation] [critical X-Injected: severity] api down Bcc: ${victim} X-Injected: title`);
    expect(headerValues(m, 'X-Remediation-Incident')).toEqual(['incident:serviceDown:api X-Injected: incident']);
    await new Promise((r) => setTimeout(r, 300));
    expect(await delivered({ to: victim })).toEqual([]);
  });

  it('makes every header value one line before nodemailer sees it (a second guard behind the library)', () => {
    const hostile = 'a\r\nBcc: x@example.com\u2028b\u0085c\u001b[31m';
    const m = pageMail('mail', at('engine'), '[x]\r\nY: z', page({ title: hostile, severity: hostile, incidentKey: hostile }));
    for (const value of [m.subject, m.messageId, m.threadId, ...Object.values(m.headers)])
      expect(value).toMatch(/^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$/);
    expect(m.subject).toBe('[x] Y: z [a Bcc: x@example.com b c [31m] a Bcc: x@example.com b c [31m');
  });

  it('cuts a huge text and title down to a readable mail, keeping their beginning', async () => {
    const chs = channels({ mail: {} });
    const [to] = toOf(chs.mail!);
    await notifyWith(chs)(page({ title: `FIRST ${'t'.repeat(5_000)}`, text: `FIRST LINE\n${'x'.repeat(200_000)}` }));
    const m = only(await waitForMail({ to: to! }));
    expect(m.raw.length).toBeLessThan(40_000);
    expect(m.parsed.subject!.length).toBeLessThanOrEqual(250);
    expect(m.parsed.subject).toMatch(/^\[remediation\] \[critical\] FIRST t+…$/);
    expect(m.parsed.text).toMatch(/FIRST LINE\nx+\n\[\.\.\. \d+ bytes cut\]/);
  });

  it('is delivered over implicit TLS (secure: true) as well', async () => {
    const chs = channels({ mail: { smtp: { port: mail.tlsPort, secure: true } } });
    const [to] = toOf(chs.mail!);
    await notifyWith(chs)(page());
    expect(headerValues(only(await waitForMail({ to: to! })), 'Received')[0]).toMatch(/with esmtpsa .*TLS1\.[23]/);
  });

  it('gives every attempt at one page the same Message-ID, and other pages others', async () => {
    const chs = channels({ mail: {}, other: {} });
    const [to] = toOf(chs.mail!);
    const req = page();
    const notify = notifyWith(chs);
    // Two attempts without the activity's checkpoint (called directly): the server gets the page twice.
    await notify(req);
    await notify(req);
    await notify({ ...req, idempotencyKey: `${req.idempotencyKey}#2` });
    await notify({ ...req, channels: ['other'] });
    const mails = await waitForMail({ to: to! }, 3);
    const ids = mails.map((m) => m.parsed.messageId);
    expect(new Set(ids).size).toBe(2);
    const [other] = await waitForMail({ to: toOf(chs.other!)[0]! });
    expect(ids).not.toContain(other!.parsed.messageId);
  });

  it('sends nothing in a dry run, the request’s or the engine’s', async () => {
    const chs = channels({ mail: {} });
    const [to] = toOf(chs.mail!);
    expect(await notifyWith(chs)(page({ dryRun: true }))).toEqual({ delivered: [{ channel: 'mail', status: 'dry-run' }] });
    expect(await notifyWith(chs, true)(page())).toEqual({ delivered: [{ channel: 'mail', status: 'dry-run' }] });
    await new Promise((r) => setTimeout(r, 500));
    expect(await delivered({ to: to! })).toEqual([]);
  });

  it('delivers a flood of 40 pages sent at once, each exactly once', async () => {
    const chs = channels({ mail: {} });
    const [to] = toOf(chs.mail!);
    const notify = notifyWith(chs);
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 40 }, () => notify(page())));
    const took = Date.now() - started;
    expect(results.every((r) => r.delivered[0]!.status === 'sent')).toBe(true);
    const mails = await waitForMail({ to: to! }, 40);
    expect(mails).toHaveLength(40);
    expect(new Set(mails.map((m) => m.parsed.messageId)).size).toBe(40);
    console.log(`40 pages at once: all accepted in ${took} ms`);
  });
});

describe('refusals and failures', () => {
  it('is retryable, naming the channel and the server, when the server is down', async () => {
    const port = await closedPort();
    const f = await failureOf(notifyWith(channels({ mail: { smtp: { port } } }))(page()));
    expect(f.nonRetryable).toBe(false);
    expect(f.type).toBe('Transient');
    expect(f.message).toContain(`notification to channel 'mail' (email via 127.0.0.1:${port}) failed`);
    expect(f.message).toContain('ECONNREFUSED');
  });

  it('is retryable when the server takes the connection and never greets, within smtp.timeout', async () => {
    const silent = await silentServer();
    try {
      const started = Date.now();
      const f = await failureOf(notifyWith(channels({ mail: { smtp: { port: silent.port, timeout: '1s' } } }))(page()));
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(f.nonRetryable).toBe(false);
      expect(f.message).toMatch(/no SMTP greeting within 1000 ms/);
    } finally {
      await silent.close();
    }
  });

  it('is final (AuthFailed) on a wrong password, and no password shows in the failure', async () => {
    const wrong = `Wr0ng-${uid()}-passw0rd`;
    const f = await failureOf(notifyWith(channels({ mail: { smtp: { password: wrong } } }))(page()));
    expect(f.nonRetryable).toBe(true);
    expect(f.type).toBe('AuthFailed');
    expect(f.message).toContain("the server refused the login of 'remediation': Invalid login: 535");
    expect(f.message).not.toContain(wrong);
    expect(f.message).not.toContain(mail.password);
  });

  it('is final (BadInput) when the server refuses every recipient, naming them', async () => {
    const refused = at(`refused-${uid()}`);
    const f = await failureOf(notifyWith(channels({ mail: { to: [refused, 'ops@elsewhere.example'] } }))(page()));
    expect(f.nonRetryable).toBe(true);
    expect(f.type).toBe('BadInput');
    expect(f.message).toMatch(/all recipients were rejected: 550/);
  });

  it('delivers to the recipients the server took, then fails final naming the one it refused', async () => {
    const took = at(`oncall-${uid()}`);
    const refused = at(`refused-${uid()}`);
    const f = await failureOf(notifyWith(channels({ mail: { to: [took, refused] } }))(page()));
    expect(f.nonRetryable).toBe(true);
    expect(f.type).toBe('BadInput');
    expect(f.message).toContain(`the server took the mail for ${took} but refused ${refused}: 550 mailbox ${refused} refused here`);
    // Recorded as delivered, so a retry (for another channel) does not send it again.
    expect(f.message).toContain("delivered to 'mail'");
    only(await waitForMail({ to: took }));
  });

  it('refuses a server whose certificate it cannot verify, and one that speaks no TLS from the first byte', async () => {
    const untrusted = await failureOf(notifyWith(channels({ mail: { smtp: { ca: undefined } } }))(page()));
    expect(untrusted.nonRetryable).toBe(true);
    expect(untrusted.type).toBe('AuthFailed');
    expect(untrusted.message).toMatch(/the server's TLS certificate is not trusted: .*UNABLE_TO_VERIFY_LEAF_SIGNATURE/);

    const plain = await failureOf(notifyWith(channels({ mail: { smtp: { secure: true } } }))(page()));
    expect(plain.nonRetryable).toBe(true);
    expect(plain.message).toMatch(/does not speak TLS from the first byte/);
  });

  it('writes nothing to the console, the password least of all', async () => {
    const out = vi.spyOn(process.stdout, 'write');
    const err = vi.spyOn(process.stderr, 'write');
    const log = vi.spyOn(console, 'log');
    try {
      await notifyWith(channels({ mail: {} }))(page());
      await failureOf(notifyWith(channels({ mail: { smtp: { password: `nope-${uid()}` } } }))(page()));
      const written = [...out.mock.calls, ...err.mock.calls, ...log.mock.calls].map((c) => String(c[0]));
      expect(written.filter((w) => w.includes(mail.password))).toEqual([]);
      expect(written.filter((w) => /AUTH|EHLO|smtp/i.test(w))).toEqual([]);
    } finally {
      out.mockRestore();
      err.mockRestore();
      log.mockRestore();
    }
  });

  it('refuses at load a password without TLS, a display name or a line break in an address, and too many recipients', () => {
    const parse = (c: Record<string, unknown>) =>
      channelSchema.safeParse({
        mail: { type: 'email', from: at('engine'), to: [at('oncall')], ...c, smtp: { host: '127.0.0.1', port: 25, ...(c.smtp as object) } },
      });
    const problems = (c: Record<string, unknown>) => {
      const r = parse(c);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(parse({}).success).toBe(true);
    expect(problems({ smtp: { user: 'u', password: 'p', starttls: 'opportunistic' } })).toEqual([
      'mail.smtp.starttls: a password is only sent over TLS: set secure: true or starttls: required',
    ]);
    expect(problems({ smtp: { user: 'u', password: 'p', starttls: 'never' } })).toHaveLength(1);
    expect(problems({ smtp: { user: 'u', password: 'p', secure: true, starttls: 'never' } })).toEqual([]);
    expect(problems({ smtp: { password: 'p' } })).toEqual(['mail.smtp: set both user and password, or neither']);
    expect(problems({ to: ['Oncall <oncall@example.com>'] })[0]).toMatch(/^mail\.to\.0: expected a plain mail address/);
    expect(problems({ to: ['oncall@example.com\r\nBcc: x@example.com'] })[0]).toMatch(/^mail\.to\.0: expected a plain mail address/);
    expect(problems({ from: 'engine@example.com\n' })[0]).toMatch(/^mail\.from: expected a plain mail address/);
    expect(problems({ to: Array.from({ length: 51 }, (_, i) => `o${i}@example.com`) })[0]).toMatch(/^mail\.to: /);
    expect(problems({ to: ['a@example.com', 'A@example.com'] })).toEqual(['mail.to: an address is listed twice']);
    expect(problems({ subjectPrefix: '[x]\r\nBcc: y@example.com' })[0]).toMatch(/^mail\.subjectPrefix: /);
    expect(problems({ smtp: { timeout: '30s' } })[0]).toMatch(/^mail\.smtp\.timeout: /);
  });
});

/**
 * A TCP relay to the mail server that, on its first `drops` connections, cuts both sides the moment
 * the server answers 250 to the message: the server has the mail, the client never learns it.
 */
async function losingAcceptance(drops: number): Promise<{ port: number; close: () => Promise<void> }> {
  let left = drops;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(mail.port, mail.host);
    const dropping = left-- > 0;
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => (client.destroy(), upstream.destroy()));
    }
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      // exim's answer to the end of the message; MAIL and RCPT get "250 OK" and "250 Accepted".
      if (dropping && /^250 OK id=/m.test(chunk.toString('latin1'))) return void (client.destroy(), upstream.destroy());
      client.write(chunk);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('under real Temporal retries', () => {
  let receiver: Receiver;
  let relay: Awaited<ReturnType<typeof losingAcceptance>>;
  let chs: Record<string, Channel>;
  let worker: Worker;
  let running: Promise<void>;
  let connection: NativeConnection;
  let client: Awaited<ReturnType<typeof temporalClient>>;
  const taskQueue = uniqueQueue('email-test');
  const wrongPassword = `Wr0ng-${uid()}-secret`;

  beforeAll(async () => {
    receiver = await startReceiver();
    relay = await losingAcceptance(1);
    chs = channels({
      mail: {},
      relayed: { smtp: { port: relay.port, starttls: 'never', user: undefined, password: undefined } },
      locked: { smtp: { password: wrongPassword } },
      flaky: { type: 'webhook', url: `${receiver.url}/flaky` },
    });
    connection = await NativeConnection.connect(temporalConnectOptions('engine'));
    worker = await Worker.create({
      connection,
      namespace: stack().temporalNamespace,
      taskQueue,
      workflowsPath: fileURLToPath(new URL('../support/notifyWorkflow.ts', import.meta.url)),
      activities: createNotifyActivities({ channels: chs, timeoutMs: 5_000, dryRun: false }),
    });
    running = worker.run();
    client = await temporalClient();
  });

  afterAll(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running;
    await connection?.close();
    await client?.connection.close();
    await relay?.close();
    await receiver?.close();
  });

  const run = async (req: NotificationRequest & { dryRun: boolean }) => {
    const workflowId = `email-test-${randomUUID()}`;
    const result = await client.client.workflow
      .execute('notifyWithRetries', { taskQueue, workflowId, args: [req] })
      .catch((e: unknown) => e);
    const history = await client.client.workflow.getHandle(workflowId).fetchHistory();
    const attempt = history.events?.find((e) => e.activityTaskStartedEventAttributes)?.activityTaskStartedEventAttributes?.attempt;
    return { result, attempts: Number(attempt ?? 0), history: JSON.stringify(history) };
  };

  it('sends one mail per page when the activity is retried after the server took the mail', async () => {
    receiver.failNext('/flaky', 1, 503);
    const req = page({ channels: ['mail', 'flaky'] });
    const { result, attempts } = await run(req);
    expect(result).toEqual({
      delivered: [
        { channel: 'mail', status: 'duplicate' },
        { channel: 'flaky', status: 'sent' },
      ],
    });
    expect(attempts).toBe(2);
    const [first] = await waitForMail({ to: toOf(chs.mail!)[0]! });
    // The retry found the mail in its checkpoint: one mail with this Message-ID, a second after 300 ms still none.
    expect(await waitForMail({ messageId: first!.parsed.messageId! })).toHaveLength(1);
  });

  it('sends the page again, with the same Message-ID, when the server took it and its 250 was lost (the window left)', async () => {
    const req = page({ channels: ['relayed'] });
    const { result, attempts } = await run(req);
    expect(result).toEqual({ delivered: [{ channel: 'relayed', status: 'sent' }] });
    expect(attempts).toBe(2);
    const mails = await waitForMail({ to: toOf(chs.relayed!)[0]! }, 2);
    expect(mails).toHaveLength(2);
    expect(mails[0]!.parsed.messageId).toBe(mails[1]!.parsed.messageId);
  });

  it('keeps the SMTP password out of the failure, the workflow history and the log', async () => {
    const { result, attempts, history } = await run(page({ channels: ['locked'] }));
    expect(result).toBeInstanceOf(WorkflowFailedError);
    const cause = (result as WorkflowFailedError).cause?.cause as ApplicationFailure;
    expect(cause.type).toBe('AuthFailed');
    expect(attempts).toBe(1);
    const ok = await run(page({ channels: ['mail'] }));
    expect(ok.result).toEqual({ delivered: [{ channel: 'mail', status: 'sent' }] });
    expect(logged.length, 'the runtime logger of this process is the capturing one').toBeGreaterThan(0);
    const log = JSON.stringify(logged, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
    for (const text of [cause.message, history, ok.history, log]) {
      expect(text).not.toContain(wrongPassword);
      expect(text).not.toContain(mail.password);
    }
  });
});

describe('an escalation through the real notification path', () => {
  const def = parseRunbook(
    `name: mailed
description: pages by email until someone owns it
appliesTo: [container]
steps:
  - id: escalate
    uses: escalate
    with: { reason: "'\${{ target.name }}' is down" }
  - id: escalated
    uses: end
    with: { outcome: escalated, detail: "\${{ steps.escalate.end }}" }
`,
    'mailed.yaml',
  );

  it('delivers exactly one mail per level, then one acknowledgement and one resolution to each, in one thread per channel', async () => {
    const chs = channels({ oncallMail: {}, seniorMail: {} });
    const s = await startSkipping(createNotifyActivities({ channels: chs, timeoutMs: 5_000, dryRun: false }));
    try {
      const handle = await s.start(
        def,
        uniqueTarget('mailed'),
        {
          escalation: {
            policy: 'email',
            levels: [
              { name: 'on-call', afterMs: 0, channels: ['oncallMail'] },
              { name: 'senior', afterMs: 20 * minute, channels: ['seniorMail'] },
            ],
          },
        },
        'fp-mail',
      );
      const [oncall] = toOf(chs.oncallMail!);
      const [senior] = toOf(chs.seniorMail!);
      await waitForMail({ to: oncall! });
      await s.env.sleep(20 * minute);
      await waitForMail({ to: senior! });
      await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'on it' });
      await statusOf(handle, (st) => st.timeline.some((e) => e.event === 'following'));
      await handle.signal(alertResolvedSignal, { fingerprint: 'fp-mail', at: new Date().toISOString() });
      const result = await handle.result();
      expect(result.outcome, result.detail).toBe('resolved-externally');

      for (const [to, level] of [
        [oncall!, 'on-call'],
        [senior!, 'senior'],
      ] as const) {
        const mails = await waitForMail({ to }, 3);
        expect(mails.map((m) => m.parsed.subject!.replace(/'mailed-[0-9a-f]+'/, "'T'")).sort()).toEqual([
          "[remediation] [acknowledged] mailed on 'T' acknowledged by alice",
          "[remediation] [critical] ServiceDown on 'T'",
          "[remediation] [resolved] mailed on 'T' resolved",
        ]);
        expect(new Set(mails.map((m) => m.parsed.messageId)).size, level).toBe(3);
        expect(new Set(mails.map((m) => m.parsed.inReplyTo)).size, level).toBe(1);
      }
    } finally {
      await s.close();
    }
  }, 90_000);
});
