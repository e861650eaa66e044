// A page as a Slack Block Kit message: the title and text as escaped mrkdwn, and, when the page asks
// something of the person reading it, Approve / Reject / Acknowledge buttons. A button press comes
// back to the engine's chat door (triggers/operators/chat.ts) carrying the button's value: the
// action, the run chain and approval step the page is about, and the workflow id; nothing secret,
// and nothing the engine trusts without checking the request's signature and the presser's role.
// The chain and step make an old page's button refuse to act on a later incident that reuses the
// workflow id, or on another approval of the same run.
import type { PageAction } from './contract.js';

/** Slack's limit on a section's text. */
const sectionChars = 3_000;
/** Our own bound on a button value (Slack allows 2,000): an action, a run id, a step id and a workflow id. */
export const maxButtonValueChars = 400;
const workflowIdPattern = /^(incident|maintenance):[A-Za-z0-9_.:-]{1,200}$/;
const chainPattern = /^[A-Za-z0-9-]{1,64}$/;
const stepPattern = /^[a-z][a-z0-9-]{0,40}$/;
const pageActions: readonly PageAction[] = ['approve', 'reject', 'acknowledge'];

/** The block that holds the buttons; the chat door drops it from the message once someone decided. */
export const actionsBlockId = 'remediate_actions';
export const actionIdPrefix = 'remediate_';

export interface PageButton {
  action: PageAction;
  workflowId: string;
  /** The run chain the page is about (absent on buttons posted before pages carried it). */
  chain?: string;
  /** The approval step an approve or reject button is about. */
  step?: string;
}

export function isPageAction(a: unknown): a is PageAction {
  return typeof a === 'string' && (pageActions as readonly string[]).includes(a);
}

export function buttonValue(b: PageButton): string {
  if (b.chain === undefined) return `${b.action}:${b.workflowId}`;
  return `${b.action}|${b.chain}|${b.step ?? ''}|${b.workflowId}`;
}

/**
 * What a pressed button asks for, or undefined when the action id and value are not one of ours
 * (or do not agree with each other).
 */
export function parseButton(actionId: unknown, value: unknown): PageButton | undefined {
  if (typeof actionId !== 'string' || typeof value !== 'string' || value.length > maxButtonValueChars) return undefined;
  if (!actionId.startsWith(actionIdPrefix)) return undefined;
  const action = actionId.slice(actionIdPrefix.length);
  if (!isPageAction(action)) return undefined;
  if (value.startsWith(`${action}|`)) {
    const [, chain, step, ...rest] = value.split('|');
    const workflowId = rest.join('|');
    if (!chainPattern.test(chain!) || (step !== '' && !stepPattern.test(step!)) || !workflowIdPattern.test(workflowId)) return undefined;
    return { action, workflowId, chain, ...(step ? { step } : {}) };
  }
  // A button posted before pages named their run chain.
  const sep = value.indexOf(':');
  if (value.slice(0, sep) !== action) return undefined;
  const workflowId = value.slice(sep + 1);
  return workflowIdPattern.test(workflowId) ? { action, workflowId } : undefined;
}

/**
 * The blocks of a page: escaped (by the caller) title and text in sections of at most Slack's
 * 3,000 characters, then one actions block. Buttons go only on pages about a workflow the engine
 * runs (the incident key is its workflow id).
 */
export function pageBlocks(
  escapedTitle: string,
  escapedText: string,
  workflowId: string,
  actions: readonly PageAction[],
  about?: { chain: string; step?: string },
): unknown[] {
  const blocks: unknown[] = [section(`*${escapedTitle}*`)];
  for (const chunk of chunks(escapedText, sectionChars)) blocks.push(section(chunk));
  const wanted = pageActions.filter((a) => actions.includes(a));
  if (wanted.length > 0 && workflowIdPattern.test(workflowId)) {
    const of =
      about && chainPattern.test(about.chain)
        ? { chain: about.chain, ...(about.step && stepPattern.test(about.step) ? { step: about.step } : {}) }
        : {};
    blocks.push({
      type: 'actions',
      block_id: actionsBlockId,
      elements: wanted.map((action) => button({ action, workflowId, ...of, ...(action === 'acknowledge' ? { step: undefined } : {}) })),
    });
  }
  return blocks;
}

function section(text: string): unknown {
  return { type: 'section', text: { type: 'mrkdwn', text } };
}

const labels: Record<PageAction, string> = { approve: 'Approve', reject: 'Reject', acknowledge: 'Acknowledge' };

function button(b: PageButton): unknown {
  const base = {
    type: 'button',
    action_id: `${actionIdPrefix}${b.action}`,
    text: { type: 'plain_text', text: labels[b.action] },
    value: buttonValue(b),
  };
  if (b.action === 'acknowledge') return base;
  // A mis-tap at 3 a.m. must not restart a database: approve and reject ask once more.
  const verb = b.action === 'approve' ? 'approve' : 'reject';
  return {
    ...base,
    style: b.action === 'approve' ? 'primary' : 'danger',
    confirm: {
      title: { type: 'plain_text', text: `${labels[b.action]}?` },
      text: { type: 'plain_text', text: `You ${verb} ${b.workflowId.slice(0, 200)} as yourself; the engine records your name.` },
      confirm: { type: 'plain_text', text: labels[b.action] },
      deny: { type: 'plain_text', text: 'Cancel' },
    },
  };
}

/**
 * Splits escaped mrkdwn into pieces of at most max characters, at a line break where one is near,
 * never inside an entity (&amp;) or a surrogate pair.
 */
export function chunks(text: string, max: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > max) {
    let cut = rest.lastIndexOf('\n', max);
    if (cut < max / 2) cut = max;
    const amp = rest.lastIndexOf('&', cut - 1);
    if (amp >= 0 && amp > cut - 6 && !rest.slice(amp, cut).includes(';')) cut = amp;
    const code = rest.charCodeAt(cut - 1);
    if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut).replace(/^\n/, '');
  }
  if (rest.trim() !== '') out.push(rest);
  return out;
}
