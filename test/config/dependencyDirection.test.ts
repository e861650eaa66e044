// One dependency direction: config ← activities ← workflows ← triggers / worker. A module may import
// its own layer and the layers before it, never one after it: workflow code never reaches an
// activity's implementation (only the types-only contract and the guard's messages), and nothing
// below the doors reaches into triggers/ or worker/.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const layers = ['config', 'activities', 'workflows', 'triggers', 'worker'] as const;
type Layer = (typeof layers)[number];

/** What each layer may import, besides itself. */
const allowed: Record<Layer, (target: string) => boolean> = {
  config: () => false,
  activities: (t) => t.startsWith('config/'),
  // Workflow code is bundled into the sandbox: from activities only what has no I/O in it.
  workflows: (t) => t.startsWith('config/') || ['activities/contract.ts', 'activities/guardMessages.ts'].includes(t),
  triggers: (t) => !t.startsWith('worker/'),
  worker: () => true,
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return found.map((spec) => relative(root, resolve(dirname(file), spec)).replace(/\.js$/, '.ts'));
}

describe('the dependency direction', () => {
  const violations: string[] = [];
  for (const layer of layers) {
    for (const file of sources(join(root, layer))) {
      for (const target of relativeImports(file)) {
        const targetLayer = target.split('/')[0] as Layer;
        if (targetLayer === layer || !layers.includes(targetLayer)) continue;
        if (!allowed[layer](target)) violations.push(`${relative(root, file)} imports ${target}`);
      }
    }
  }

  it('has each layer import only itself and the layers before it', () => {
    expect(violations).toEqual([]);
  });

  it('sees the imports it checks (a checker that finds nothing cannot fail)', () => {
    const imports = relativeImports(join(root, 'workflows', 'guardrails.ts'));
    expect(imports).toContain('activities/guardMessages.ts');
    expect(imports).toContain('config/duration.ts');
    expect(allowed.activities('workflows/guardrails.ts')).toBe(false);
  });
});
