// The answer to a button press, posted to the request's response_url: on success the page is shown
// again without its buttons and with who decided; on a refusal, only the person who pressed sees
// why (the buttons stay for someone allowed). The URL comes inside the request, so it is used only
// on an origin the config names, with a timeout, and a redirect is never followed.
import type { PageAction } from '../../activities/contract.js';
import { slackEscape } from '../../activities/notify.js';
import { actionIdPrefix, actionsBlockId } from '../../activities/slackPage.js';

export interface ResponseTarget {
  origins: readonly string[];
  timeoutMs: number;
}

export type Delivery = { ok: true; status: number } | { ok: false; reason: string };

const done: Record<PageAction, string> = { approve: 'Approved', reject: 'Rejected', acknowledge: 'Acknowledged' };
const icon: Record<PageAction, string> = { approve: ':white_check_mark:', reject: ':no_entry_sign:', acknowledge: ':eyes:' };

/** Whether the engine may post to this response_url; the reason when not. */
export function responseUrlProblem(url: string | undefined, origins: readonly string[]): string | undefined {
  if (url === undefined) return 'the request has no usable response_url';
  if (!URL.canParse(url)) return 'response_url is not a URL';
  const u = new URL(url);
  if (u.username || u.password) return 'response_url carries credentials';
  if (!origins.includes(u.origin)) return `response_url origin ${u.origin.slice(0, 100)} is not in chat.slack.responseOrigins`;
  return undefined;
}

/**
 * The page again with a line saying who decided (Slack replaces the original). The buttons the
 * decision settles go: approve and reject together, acknowledge on its own; others stay. Without
 * the page's blocks, a message of its own beside the page.
 */
export function decidedMessage(action: PageAction, operator: string, at: Date, original: unknown[] | undefined): Record<string, unknown> {
  const line = `${icon[action]} ${done[action]} by *${slackEscape(operator)}* (via chat) at ${at.toISOString().slice(0, 19)}Z`;
  // The page's blocks did not come with the press (too big to take, or none): replacing it would
  // leave only this line and erase the diagnostics for everyone. The decision is said beside it.
  if (original === undefined)
    return {
      response_type: 'in_channel',
      replace_original: false,
      text: `${done[action]} by ${slackEscape(operator)}`,
      blocks: [{ type: 'context', elements: [{ type: 'mrkdwn', text: line }] }],
    };
  const settled = new Set(
    action === 'acknowledge' ? [`${actionIdPrefix}acknowledge`] : [`${actionIdPrefix}approve`, `${actionIdPrefix}reject`],
  );
  const kept = (original ?? []).flatMap((b) => {
    const block = b as { type?: unknown; block_id?: unknown; elements?: unknown };
    if (block.type !== 'actions' || block.block_id !== actionsBlockId || !Array.isArray(block.elements)) return [b];
    const elements = block.elements.filter((e) => !settled.has(String((e as { action_id?: unknown }).action_id)));
    return elements.length > 0 ? [{ ...block, elements }] : [];
  });
  return {
    replace_original: true,
    text: `${done[action]} by ${slackEscape(operator)}`,
    blocks: [...kept, { type: 'context', elements: [{ type: 'mrkdwn', text: line }] }],
  };
}

/** Only the presser sees it; the page and its buttons stay as they were. */
export function refusedMessage(action: PageAction, why: string): Record<string, unknown> {
  return {
    response_type: 'ephemeral',
    replace_original: false,
    text: `:warning: Your ${action} was not taken: ${slackEscape(why.slice(0, 500))}`,
  };
}

/** One POST, bounded in time, never redirected; a 5xx or network fault is tried once more. */
export async function postResponse(url: string, message: Record<string, unknown>, target: ResponseTarget): Promise<Delivery> {
  const problem = responseUrlProblem(url, target.origins);
  if (problem) return { ok: false, reason: problem };
  let last: Delivery = { ok: false, reason: 'not sent' };
  for (let attempt = 1; attempt <= 2; attempt++) {
    last = await postOnce(url, message, target.timeoutMs);
    if (last.ok || !/^(network|status 5|no answer)/.test(last.reason)) return last;
    if (attempt === 1) await new Promise((r) => setTimeout(r, 500));
  }
  return last;
}

async function postOnce(url: string, message: Record<string, unknown>, timeoutMs: number): Promise<Delivery> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'remediation-engine' },
      body: JSON.stringify(message),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') return { ok: false, reason: `no answer within ${timeoutMs} ms` };
    const cause = (err as { cause?: { code?: string } }).cause;
    return { ok: false, reason: `network: ${cause?.code ?? (err as Error).message.slice(0, 120)}` };
  }
  // The body is not needed; a large one is not read.
  await res.body?.cancel().catch(() => undefined);
  if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
  if (res.status >= 300 && res.status < 400) return { ok: false, reason: `redirect ${res.status} not followed` };
  return { ok: false, reason: `status ${res.status}` };
}
