// Pages by email: one SMTP delivery per page and channel, through nodemailer, called by the notify
// activity (activities/notify.ts) for channels of type `email`.
//
// Exactly one mail per page: the notify activity records a channel as delivered (in its heartbeat
// details) the moment the server answers 250 to the message, through `accepted`, before anything
// else can fail; a retried activity skips that channel. What is left is the window between the
// server's 250 and that record reaching Temporal: the 250 lost on the way (the connection drops right
// after the server took the mail) or the worker dying before its heartbeat is sent. The page is then
// sent again, which beats losing it, with the same Message-ID (derived from the page's idempotency
// key), so a reader or a mail store that folds duplicates by Message-ID shows it once.
//
// TLS is verified always (the system's CAs or `smtp.ca`), and a password is sent only over TLS (the
// config refuses anything else); the transport logs nothing, since its protocol log would hold the
// AUTH exchange. Failures name the channel and the server, never the password.
import nodemailer from 'nodemailer';
import type { NodemailerError } from 'nodemailer/lib/errors';
import type { SMTPSentMessageInfo } from 'nodemailer/lib/smtp-transport';
import { ApplicationFailure } from '@temporalio/common';
import { mailAddressPattern } from '../config/mailChannel.js';
import { parseDuration } from '../config/duration.js';
import type { Channel } from '../config/schema.js';
import { redact, type Secret } from '../config/secret.js';
import type { NotificationRequest } from './contract.js';
import { pageMail } from './emailPage.js';
import { authFailed, badInput, transient } from './failures.js';
import { activitySignal } from './limits.js';

export type EmailChannel = Extract<Channel, { type: 'email' }>;

const errorTextChars = 300;

/** Node's and OpenSSL's codes for a certificate that does not prove the server is who it should be. */
const untrustedCertificate = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Sends one page as one mail to the channel's recipients. `accepted` runs as soon as the server has
 * taken the mail, before a refusal of some of the recipients is thrown, so the caller never sends
 * it again to those who got it.
 */
export async function sendPageMail(name: string, channel: EmailChannel, req: NotificationRequest, accepted: () => void): Promise<void> {
  const { smtp } = channel;
  const server = `${smtp.host.includes(':') ? `[${smtp.host}]` : smtp.host}:${smtp.port}`;
  const what = `notification to channel '${name}' (email via ${server})`;
  // The config checked these at load; a channel built in code gets the same guarantee here.
  const bad = [channel.from, ...channel.to].find((a) => !mailAddressPattern.test(a));
  if (bad !== undefined) throw badInput(what, `'${bad.slice(0, 80).replace(/[^\x20-\x7e]/g, '?')}' is not a plain mail address`);

  let password: string | undefined;
  let ca: string | undefined;
  try {
    password = smtp.password?.reveal();
    ca = smtp.ca?.reveal();
  } catch (err) {
    // Says which variable or file, never a value.
    throw badInput(what, (err as Error).message);
  }
  const secrets: Secret[] = smtp.password ? [smtp.password] : [];
  const timeoutMs = parseDuration(smtp.timeout);
  const mail = pageMail(name, channel.from, channel.subjectPrefix, req);

  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: !smtp.secure && smtp.starttls === 'required',
    ignoreTLS: !smtp.secure && smtp.starttls === 'never',
    // A STARTTLS the server refuses leaves the session in plaintext (never with a password: the
    // config allows one only with TLS required), but a certificate that fails verification fails.
    opportunisticTLS: !smtp.secure && smtp.starttls === 'opportunistic',
    tls: { rejectUnauthorized: true, minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) },
    ...(smtp.user !== undefined && password !== undefined ? { auth: { user: smtp.user, pass: password }, forceAuth: true } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
    logger: false,
    debug: false,
    // Nothing in a page is a file or a URL to fetch; refuse it should anything ever look like one.
    disableFileAccess: true,
    disableUrlAccess: true,
  });

  const cancelled = activitySignal();
  // A little past the per-phase timeouts, so a phase that times out says which (no greeting, no answer).
  const deadline = AbortSignal.timeout(timeoutMs + 500);
  let info: SMTPSentMessageInfo;
  try {
    info = await transport.sendMail({
      from: channel.from,
      to: channel.to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      messageId: mail.messageId,
      inReplyTo: mail.threadId,
      references: [mail.threadId],
      headers: mail.headers,
      signal: cancelled ? AbortSignal.any([deadline, cancelled]) : deadline,
    });
  } catch (err) {
    if (cancelled?.aborted) throw cancelled.reason;
    if (deadline.aborted) throw transient(what, `not delivered within ${timeoutMs} ms (smtp.timeout)`);
    throw mailFailure(what, err, secrets, smtp.user, timeoutMs);
  } finally {
    transport.close();
  }
  accepted();

  const refused = info.rejected ?? [];
  if (refused.length > 0) {
    const why = info.rejectedErrors?.[0]?.response ?? info.rejectedErrors?.[0]?.message ?? '';
    const took = (info.accepted ?? []).join(', ');
    throw badInput(
      what,
      `the server took the mail for ${took} but refused ${refused.join(', ')}${why ? `: ${cut(redact(why, secrets))}` : ''}`,
    );
  }
}

/** What the server or the connection said, as a failure Temporal retries or not. */
function mailFailure(what: string, err: unknown, secrets: Secret[], user: string | undefined, timeoutMs: number): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const e = (err ?? {}) as NodemailerError;
  const said = cut(redact(String(e.message ?? err), secrets));
  const code = e.originalCode ?? e.code;
  switch (e.code) {
    case 'EAUTH':
    case 'ENOAUTH':
      // 454 and other 4xx: the server could not check the login just now.
      if (e.responseCode !== undefined && e.permanent === false) return transient(what, `login deferred: ${said}`);
      return authFailed(what, `the server refused the login${user ? ` of '${user}'` : ''}: ${said}`);
    case 'EENVELOPE':
    case 'EMESSAGE':
      // A refused sender, every recipient refused, or the message refused after DATA.
      return e.permanent ? badInput(what, said) : transient(what, said);
    case 'ETIMEDOUT':
      if (e.timeoutType === 'GREETING_TIMEOUT' || (e.command === 'CONN' && e.timeoutType === 'SOCKET_TIMEOUT'))
        return transient(what, `no SMTP greeting within ${timeoutMs} ms (a port of implicit TLS needs secure: true)`);
      return transient(what, said);
  }
  if (code && untrustedCertificate.has(code))
    return authFailed(what, `the server's TLS certificate is not trusted: ${said} (${code}; smtp.ca names the CA that signs it)`);
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER')
    return badInput(
      what,
      'the server does not speak TLS from the first byte (secure: true is for implicit TLS, e.g. port 465; use secure: false with starttls)',
    );
  return transient(what, code && !said.includes(code) ? `${said} (${code})` : said);
}

function cut(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > errorTextChars ? `${line.slice(0, errorTextChars)}…` : line;
}
