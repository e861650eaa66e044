// What a page looks like as a mail: subject, plain text, a simple HTML alternative, and the ids
// that make it one message per page and one thread per incident. Pure: activities/email.ts sends it.
//
// Titles and texts carry alert labels and annotations, which anyone who can fire an alert writes.
// They reach the subject and headers as one line of printable text (a CR/LF there would start a
// header of the sender's choosing), and the HTML only as escaped text.
import { createHash } from 'node:crypto';
import type { NotificationRequest } from './contract.js';

export interface PageMail {
  subject: string;
  text: string;
  html: string;
  /** `<page.…@domain>`: the same for every attempt at this page, so a reader can fold a duplicate. */
  messageId: string;
  /** `<incident.…@domain>`: what every mail of this incident run answers (In-Reply-To, References). */
  threadId: string;
  headers: Record<string, string>;
}

const subjectChars = 250;
const titleChars = 1_000;
const textBytes = 8_192;
const headerChars = 200;

const eventWords: Record<NotificationRequest['event'], string> = { trigger: 'opened', acknowledge: 'acknowledged', resolve: 'resolved' };

export function pageMail(channelName: string, from: string, subjectPrefix: string, req: NotificationRequest): PageMail {
  const domain = from.slice(from.lastIndexOf('@') + 1).toLowerCase();
  const title = oneLine(req.title, titleChars);
  const severity = oneLine(req.severity, 32);
  const incident = oneLine(req.incidentKey, headerChars);
  // The runbooks' titles often lead with the severity already ("[critical] ServiceDown on 'api'").
  const severityShown = !severity || title.toLowerCase().includes(`[${severity.toLowerCase()}]`);
  const mark = req.event === 'trigger' ? (severityShown ? '' : `[${severity}] `) : `[${eventWords[req.event]}] `;
  const body = capHead(multiLine(req.text), textBytes);
  const about = `Incident ${incident} · ${eventWords[req.event]}${severity ? ` · severity ${severity}` : ''}`;
  // The CLI command an on-call can paste; the page's own Acknowledge button lives in chat channels.
  const ackHint =
    req.event === 'trigger' && req.actions?.includes('acknowledge') ? `To acknowledge: npx remediate ack ${incident} --reason "…"` : '';

  return {
    subject: oneLine(`${oneLine(subjectPrefix, 64)} ${mark}${title}`, subjectChars),
    text: [title, '', body, '', '-- ', about, ...(ackHint ? [ackHint] : [])].join('\n'),
    html: [
      '<!DOCTYPE html>',
      '<html><head><meta charset="utf-8"></head><body style="font-family:sans-serif">',
      `<h2 style="margin:0 0 12px 0">${escapeHtml(title)}</h2>`,
      `<pre style="white-space:pre-wrap;font-family:monospace;font-size:13px">${escapeHtml(body)}</pre>`,
      `<p style="color:#555;font-size:12px">${escapeHtml(about)}</p>`,
      ackHint ? `<p style="color:#555;font-size:12px">${escapeHtml(ackHint)}</p>` : '',
      '</body></html>',
    ]
      .filter(Boolean)
      .join('\n'),
    messageId: `<page.${digest(`${req.idempotencyKey}\n${channelName}`)}@${domain}>`,
    threadId: `<incident.${digest(`${threadOf(req)}\n${channelName}`)}@${domain}>`,
    headers: {
      // RFC 3834: no vacation or out-of-office answers to a page; Exchange reads the second.
      'Auto-Submitted': 'auto-generated',
      'X-Auto-Response-Suppress': 'All',
      'X-Remediation-Incident': incident,
      'X-Remediation-Event': req.event,
    },
  };
}

/**
 * The incident run a page belongs to. The escalation keys pages `<incident>:<run>:<page>` (the run, so
 * the next incident on the same target starts a thread of its own); a key of another shape threads
 * by the incident alone.
 */
function threadOf(req: NotificationRequest): string {
  const prefix = `${req.incidentKey}:`;
  if (!req.idempotencyKey.startsWith(prefix)) return req.incidentKey;
  const rest = req.idempotencyKey.slice(prefix.length);
  const colon = rest.indexOf(':');
  return colon > 0 ? `${req.incidentKey}:${rest.slice(0, colon)}` : req.incidentKey;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 40);
}

/** For the HTML part: text stays text, whatever markup it holds. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** One header-safe line: every control character and line or paragraph separator becomes a space. */
export function oneLine(text: string, maxChars: number): string {
  const line = text
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const chars = Array.from(line); // by code point: a cut never splits a surrogate pair
  return chars.length > maxChars ? `${chars.slice(0, maxChars - 1).join('')}…` : line;
}

/** Body text: line breaks kept (as \n), other control characters (terminal escapes) dropped. */
function multiLine(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '');
}

/** Pages are read from the top: keep the head. */
function capHead(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  return `${buf
    .subarray(0, maxBytes)
    .toString('utf8')
    .replace(/\uFFFD+$/, '')}\n[... ${buf.length - maxBytes} bytes cut]`;
}
