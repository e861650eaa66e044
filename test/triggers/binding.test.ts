import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { matchBinding } from '../../triggers/alerts/binding.js';

const base: EngineConfigInput = {
  webhook: { token: 'test-token' },
  targets: {
    api: { kind: 'container', container: 'api' },
    web: { kind: 'container', container: 'web' },
    'db-main': { kind: 'postgres', port: 15432 },
    'db-replica': { kind: 'postgres', port: 15433 },
  },
  bindings: [
    { alert: 'ServiceDown', runbook: 'serviceDown', targetLabel: 'service', targets: ['api', 'web'] },
    {
      alert: 'DatabaseDown',
      runbook: 'databaseConnection',
      target: 'db-replica',
      matchers: [{ name: 'role', value: 'replica|standby', isRegex: true }],
    },
    { alert: 'DatabaseDown', runbook: 'databaseConnection', target: 'db-main', matchers: [{ name: 'env', value: 'prod' }] },
    { alert: 'HighErrorRate', runbook: 'highErrorRate', target: 'api', matchers: [{ name: 'env', value: 'staging', isEqual: false }] },
  ],
  channels: { log: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } },
  escalation: { policies: { p: { levels: [{ name: 'l1', after: '0s', channels: ['log'] }] } }, default: 'p' },
};
const config = parseConfig(base, 'binding test');

const labels = (l: Record<string, string>) => ({ labels: l });

describe('alert → runbook binding', () => {
  it('selects the target named by the binding’s target label when the binding allows it', () => {
    const m = matchBinding(config, labels({ alertname: 'ServiceDown', service: 'web' }));
    expect(m).toMatchObject({ matched: true, runbook: 'serviceDown', target: 'web', bindingIndex: 0 });
  });

  it('refuses a label value that names a target the binding does not allow, saying which', () => {
    const m = matchBinding(config, labels({ alertname: 'ServiceDown', service: 'evil' }));
    expect(m).toEqual({
      matched: false,
      code: 'target-not-allowed',
      reason: "label service='evil' names no target this binding allows (allowed: api, web)",
    });
  });

  it('refuses a label naming a configured target outside the binding’s list', () => {
    // db-main exists in the config, but the ServiceDown binding may only touch api and web.
    const m = matchBinding(config, labels({ alertname: 'ServiceDown', service: 'db-main' }));
    expect(m).toMatchObject({ matched: false, code: 'target-not-allowed' });
  });

  it('reports a missing target label instead of guessing a target', () => {
    const m = matchBinding(config, labels({ alertname: 'ServiceDown' }));
    expect(m).toMatchObject({ matched: false, code: 'no-target-label' });
    if (!m.matched) expect(m.reason).toContain('has no label service');
    expect(matchBinding(config, labels({ alertname: 'ServiceDown', service: '' }))).toMatchObject({
      matched: false,
      code: 'no-target-label',
    });
  });

  it('uses a binding’s fixed target whatever the labels say', () => {
    const m = matchBinding(config, labels({ alertname: 'DatabaseDown', env: 'prod', service: 'api', target: 'api' }));
    expect(m).toMatchObject({ matched: true, runbook: 'databaseConnection', target: 'db-main' });
  });

  it('picks the first binding whose matchers fit, with anchored regular expressions', () => {
    expect(matchBinding(config, labels({ alertname: 'DatabaseDown', role: 'standby', env: 'prod' }))).toMatchObject({
      target: 'db-replica',
      bindingIndex: 1,
    });
    // "replica-2" is not "replica" or "standby": the regex is anchored, so the prod binding applies.
    expect(matchBinding(config, labels({ alertname: 'DatabaseDown', role: 'replica-2', env: 'prod' }))).toMatchObject({
      target: 'db-main',
      bindingIndex: 2,
    });
  });

  it('leaves an alert unmatched when no binding’s matchers fit, listing what was tried', () => {
    const m = matchBinding(config, labels({ alertname: 'DatabaseDown', env: 'dev' }));
    expect(m).toMatchObject({ matched: false, code: 'matchers' });
    if (!m.matched)
      expect(m.reason).toBe(`alert 'DatabaseDown' matches none of its bindings' matchers ({role=~"replica|standby"} or {env="prod"})`);
  });

  it('honours negative matchers, treating a missing label as empty', () => {
    expect(matchBinding(config, labels({ alertname: 'HighErrorRate', env: 'staging' }))).toMatchObject({
      matched: false,
      code: 'matchers',
    });
    expect(matchBinding(config, labels({ alertname: 'HighErrorRate' }))).toMatchObject({ matched: true, target: 'api' });
  });

  it('ignores alerts nobody bound, and alerts without an alertname', () => {
    expect(matchBinding(config, labels({ alertname: 'DiskFull' }))).toEqual({
      matched: false,
      code: 'no-binding',
      reason: "no binding for alert 'DiskFull'",
    });
    expect(matchBinding(config, labels({ service: 'api' }))).toMatchObject({ matched: false, code: 'no-alertname' });
  });

  it('does not let a later binding pick up an alert whose first matching binding refused the target', () => {
    const c = parseConfig(
      {
        ...base,
        bindings: [
          { alert: 'ServiceDown', runbook: 'serviceDown', targetLabel: 'service', targets: ['api'] },
          { alert: 'ServiceDown', runbook: 'serviceDown', target: 'web' },
        ],
      },
      'fallthrough test',
    );
    expect(matchBinding(c, labels({ alertname: 'ServiceDown', service: 'other' }))).toMatchObject({
      matched: false,
      code: 'target-not-allowed',
    });
  });

  it('is not fooled by label values that are names of Object.prototype members', () => {
    const c = parseConfig(
      { ...base, bindings: [{ alert: 'ServiceDown', runbook: 'serviceDown', targetLabel: 'service', targets: ['api'] }] },
      't',
    );
    for (const evil of ['constructor', '__proto__', 'toString', 'hasOwnProperty'])
      expect(matchBinding(c, labels({ alertname: 'ServiceDown', service: evil }))).toMatchObject({
        matched: false,
        code: 'target-not-allowed',
      });
    expect(matchBinding(c, { labels: JSON.parse('{"alertname":"ServiceDown","__proto__":"api"}') })).toMatchObject({
      matched: false,
      code: 'no-target-label',
    });
  });

  it('quotes and truncates hostile label values in reasons', () => {
    const m = matchBinding(config, labels({ alertname: 'ServiceDown', service: `x\n${'y'.repeat(500)}` }));
    expect(m.matched).toBe(false);
    if (!m.matched) {
      expect(m.reason).not.toContain('\n');
      expect(m.reason.length).toBeLessThan(200);
    }
  });

  it('never starts the maintenance runbook from an alert', () => {
    // Refused when the config loads...
    expect(() => parseConfig({ ...base, bindings: [{ alert: 'Maint', runbook: 'maintenance', target: 'api' }] }, 't')).toThrow(
      /bindings\[0\]\.runbook: "maintenance" is a maintenance runbook; alerts start incident runbooks/,
    );
    // ...and by the matcher too, for a config built in code.
    const c = {
      ...config,
      bindings: [{ ...config.bindings[0]!, alert: 'Maint', runbook: 'maintenance', target: 'api', targetLabel: undefined, targets: [] }],
    };
    expect(matchBinding(c, labels({ alertname: 'Maint' }))).toMatchObject({ matched: false, code: 'not-an-incident-runbook' });
  });

  it('refuses a binding whose target is missing from a config built without the loader', () => {
    const c = { ...config, bindings: [{ ...config.bindings[0]!, targets: ['ghost'] }] };
    expect(matchBinding(c, labels({ alertname: 'ServiceDown', service: 'ghost' }))).toMatchObject({
      matched: false,
      code: 'unknown-target',
    });
  });
});
